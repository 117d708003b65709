"""Reads for workspaces and memberships: who belongs where, read once per user object.

What a role may do is jobs.policy's question; this module only answers "which workspaces,
in which role".
"""

from __future__ import annotations

from .models import Membership


def user_roles(user) -> dict[int, str]:
    """workspace id → role, read once per user object."""
    if not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, "_reportdesk_roles", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("workspace_id", "role"))
        user._reportdesk_roles = cached
    return cached


def member_workspace_ids(user) -> list[int] | None:
    """The workspaces `user` may see (None: all of them, for a superuser)."""
    if getattr(user, "is_superuser", False):
        return None
    return list(user_roles(user))
