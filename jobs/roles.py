"""Roles as Django groups: one group per role, holding the permissions jobs.policy names.

Run after every migrate (jobs.apps), and by add_member; idempotent.
"""

from django.contrib.auth.models import Group, Permission

from reportdesk.models import Role

from .policy import ROLE_PERMISSIONS


def roles_ensure() -> dict[str, Group]:
    groups = {}
    for role in Role.values:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = {tuple(name.split(".", 1)) for name in ROLE_PERMISSIONS[role]}
        perms = [
            p
            for p in Permission.objects.filter(codename__in=[c for _, c in wanted]).select_related("content_type")
            if (p.content_type.app_label, p.codename) in wanted
        ]
        group.permissions.set(perms)
        groups[role] = group
    return groups
