"""The rule that turns an identity provider's groups into workspace roles.

OIDC_ROLE_MAP reads "group=workspace-slug:role,group=workspace-slug:role,...". A group may
appear more than once (one group, several workspaces); when several of a person's groups
give roles in the same workspace, the strongest role wins (operator > reviewer > requester).
"""

from __future__ import annotations

from dataclasses import dataclass

from reportdesk.models import Role

# Strongest last: a person in two groups gets the stronger role.
ROLE_ORDER = (Role.REQUESTER, Role.REVIEWER, Role.OPERATOR)


class RoleMapError(ValueError):
    pass


@dataclass(frozen=True)
class Grant:
    group: str
    workspace: str
    role: str


def role_map_parse(text: str) -> list[Grant]:
    """Parse OIDC_ROLE_MAP; a RoleMapError names the first entry that does not read."""
    grants = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        group, sep, target = entry.rpartition("=")
        workspace, colon, role = target.partition(":")
        group, workspace, role = group.strip(), workspace.strip(), role.strip()
        if not sep or not colon or not group or not workspace:
            raise RoleMapError(f"'{entry}' is not group=workspace-slug:role.")
        if role not in Role.values:
            raise RoleMapError(f"'{entry}': the role must be one of {', '.join(Role.values)}.")
        grants.append(Grant(group=group, workspace=workspace, role=role))
    return grants


def roles_for_groups(grants: list[Grant], groups: list[str]) -> dict[str, str]:
    """{workspace slug: role} that `groups` give under `grants`."""
    held = set(groups)
    roles: dict[str, str] = {}
    for grant in grants:
        if grant.group in held:
            current = roles.get(grant.workspace)
            if current is None or ROLE_ORDER.index(grant.role) > ROLE_ORDER.index(current):
                roles[grant.workspace] = grant.role
    return roles
