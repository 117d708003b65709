"""Reads for workspaces and memberships: who belongs where, read once per user object.

What a role may do is jobs.policy's question; this module only answers "which workspaces,
in which role".
"""

from __future__ import annotations

from .models import Membership, Workspace


def user_roles(user) -> dict[int, str]:
    """workspace id → role, read once per user object."""
    return {workspace.pk: role for workspace, role in _memberships(user).values()}


def member_workspace(user, slug: str) -> Workspace | None:
    """The workspace `slug` if `user` belongs to it: another workspace reads like one that
    does not exist. A superuser sees every workspace."""
    if getattr(user, "is_superuser", False):
        return Workspace.objects.filter(slug=slug).first()
    found = _memberships(user).get(slug)
    return found[0] if found else None


def workspaces_by_id(user, ids) -> dict[int, Workspace]:
    """The workspaces `ids` (which `user` may see), from the memberships already read where
    they can be: a page of jobs needs no join for its workspaces. One query for the others
    (a superuser's)."""
    found = {workspace.pk: workspace for workspace, _ in _memberships(user).values()}
    missing = set(ids) - found.keys()
    if missing:
        found |= Workspace.objects.in_bulk(missing)
    return found


def _memberships(user) -> dict[str, tuple[Workspace, str]]:
    """slug → (workspace, role) of every membership, in one query, once per user object: a
    request that checks the role and then names the workspace reads nothing twice."""
    if not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, "_reportdesk_roles", None)
    if cached is None:
        rows = Membership.objects.filter(user=user).select_related("workspace").order_by()
        cached = {row.workspace.slug: (row.workspace, row.role) for row in rows}
        user._reportdesk_roles = cached
    return cached


def member_workspace_ids(user) -> list[int] | None:
    """The workspaces `user` may see (None: all of them, for a superuser)."""
    if getattr(user, "is_superuser", False):
        return None
    return list(user_roles(user))
