"""manage.py add_member <workspace-slug> <username> --role <role> [--password ...]

Creates the workspace and the user where missing and sets the user's role there. Safe to
run twice: a second run changes nothing unless the role or password differs.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from reportdesk.models import Role, Workspace
from reportdesk.services import membership_set


class Command(BaseCommand):
    help = "Add a person to a workspace with a role (creates what is missing; safe to run twice)."

    def add_arguments(self, parser):
        parser.add_argument("workspace", help="Workspace slug, e.g. research-ops")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="Set this password (otherwise a new user gets an unusable one).")
        parser.add_argument("--email", default="")
        parser.add_argument("--workspace-name", help="Display name for a new workspace.")

    @transaction.atomic
    def handle(self, *args, workspace, username, role, password=None, email="", workspace_name=None, **options):
        slug = slugify(workspace)
        if slug != workspace:
            raise CommandError(f"'{workspace}' is not a valid slug; did you mean '{slug}'?")
        ws, ws_created = Workspace.objects.get_or_create(
            slug=slug, defaults={"name": workspace_name or slug.replace("-", " ").title()}
        )
        User = get_user_model()
        # Members work in the admin console; what they see there is scoped by membership.
        user, user_created = User.objects.get_or_create(username=username, defaults={"email": email, "is_staff": True})
        changed = []
        if user_created:
            if password:
                user.set_password(password)
            else:
                user.set_unusable_password()
        elif password and not user.check_password(password):
            user.set_password(password)
            changed.append("password")
        user.save()
        membership, m_created, role_changed = membership_set(workspace=ws, user=user, role=role)
        if role_changed:
            changed.append(f"role → {role}")
        parts = []
        parts.append(f"workspace {slug} {'created' if ws_created else 'exists'}")
        parts.append(f"user {username} {'created' if user_created else 'exists'}")
        parts.append(f"{role} membership {'created' if m_created else 'exists'}")
        if changed:
            parts.append("updated: " + ", ".join(changed))
        self.stdout.write("; ".join(parts) + ".")
