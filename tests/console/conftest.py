"""The console's pages are the admin's: the same people, workspaces and signed-in clients."""

from tests.admin.conftest import (  # noqa: F401  (fixtures, shared with the admin tests)
    as_user,
    operator,
    other_workspace,
    requester,
    reviewer,
    superuser,
    workspace,
)
