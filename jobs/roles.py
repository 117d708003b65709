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
        codenames = ROLE_PERMISSIONS[role]
        perms = Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames)
        group.permissions.set(perms)
        groups[role] = group
    return groups
