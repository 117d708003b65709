"""Writes for sign-in: the roles a single sign-on gives, applied through the membership service."""

from __future__ import annotations

import logging

from django.db import transaction

from reportdesk.models import Membership, Workspace
from reportdesk.services import membership_remove, membership_set

log = logging.getLogger(__name__)


@transaction.atomic
def sso_roles_apply(*, user, roles: dict[str, str], managed: set[str]) -> None:
    """Make `user`'s memberships in the `managed` workspaces match `roles` ({slug: role}):
    set the roles given, remove the memberships no group gives any more. Memberships in
    workspaces the role map does not name are left as an operator set them. A workspace the
    map names but that does not exist is skipped (operators create workspaces)."""
    workspaces = {w.slug: w for w in Workspace.objects.filter(slug__in=managed)}
    for slug in sorted(set(roles) - set(workspaces)):
        log.warning("OIDC_ROLE_MAP names workspace %s, which does not exist", slug)
    for slug, role in roles.items():
        if slug in workspaces:
            membership_set(workspace=workspaces[slug], user=user, role=role)
    stale = Membership.objects.filter(user=user, workspace__slug__in=managed).exclude(workspace__slug__in=list(roles))
    for membership in stale.select_related("user"):
        membership_remove(membership=membership)
