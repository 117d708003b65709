"""Writes for workspaces and memberships."""

from django.db import transaction

from django.contrib.auth.models import Group

from .models import Membership, Role, Workspace


@transaction.atomic
def membership_set(*, workspace: Workspace, user, role: str) -> tuple[Membership, bool, bool]:
    """Give `user` `role` in `workspace`, and keep their groups (the union of their roles
    across workspaces) and staff flag in step. Returns (membership, created, role_changed)."""
    membership, created = Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    changed = not created and membership.role != role
    if changed:
        membership.role = role
        membership.save(update_fields=["role"])
    if not user.is_staff:
        # Members work in the admin console; what they see there is scoped by membership.
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    _groups_sync(user)
    return membership, created, changed


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Take the member out of the workspace; they keep only the groups of the roles they
    still hold elsewhere."""
    user = membership.user
    membership.delete()
    _groups_sync(user)


def _groups_sync(user) -> None:
    # One group per role, named after it; the permissions each holds are set by the jobs app
    # (jobs.roles, after every migrate), which knows what each role may do.
    groups = {role: Group.objects.get_or_create(name=role)[0] for role in Role.values}
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    user.groups.remove(*[g for r, g in groups.items() if r not in roles])
    user.groups.add(*[groups[r] for r in roles])
    if hasattr(user, "_reportdesk_roles"):
        del user._reportdesk_roles
