"""Single sign-on through OpenID Connect (mozilla-django-oidc), off unless configured.

The identity provider says who someone is and which groups they are in; OIDC_ROLE_MAP says
what those groups give here. A person whose groups give no role is refused (and told why on
the refusal page, and loses the roles the map gave them before); a person seen for the first
time gets an account; on every sign-in the roles in the workspaces the map covers follow the
groups, through the membership service.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from reportdesk.models import Workspace

from .role_map import role_map_parse, roles_for_groups
from .services import sso_roles_apply
from .sso import REFUSAL_SESSION_KEY, sso_enabled

log = logging.getLogger(__name__)


def _groups(claims: dict) -> list[str]:
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    return [g for g in groups if isinstance(g, str)]


class SSOBackend(OIDCAuthenticationBackend):
    def authenticate(self, request, **kwargs):
        if not sso_enabled():
            return None
        return super().authenticate(request, **kwargs)

    def verify_claims(self, claims):
        """Let in only people the role map gives a role; say why to anyone it does not."""
        if not claims.get("email"):
            self._refuse(claims, reason="The identity provider did not share an email address.")
            return False
        if str(claims.get("email_verified", True)).strip().lower() == "false":  # some providers send a string
            # Accounts are matched by email: an address the provider has not verified could be
            # anyone's, including an existing account's.
            self._refuse(claims, reason="The identity provider has not verified your email address.")
            return False
        grants = role_map_parse(settings.OIDC_ROLE_MAP)
        roles = roles_for_groups(grants, _groups(claims))
        if not Workspace.objects.filter(slug__in=list(roles)).exists():
            # Taken out of every group that gives a role: the roles the groups gave go too, or
            # the person's API token and open sessions would keep them.
            self._roles_withdraw(claims, roles=roles, managed={g.workspace for g in grants})
            self._refuse(claims, reason="None of your groups gives access to a reportdesk workspace.")
            return False
        return True

    @transaction.atomic
    def _roles_withdraw(self, claims: dict, *, roles: dict[str, str], managed: set[str]) -> None:
        for user in self.filter_users_by_claims(claims):
            sso_roles_apply(user=user, roles=roles, managed=managed)

    def _refuse(self, claims: dict, *, reason: str) -> None:
        log.warning("single sign-on refused %s: %s", claims.get("email") or claims.get("sub"), reason)
        self.request.session[REFUSAL_SESSION_KEY] = {
            "who": claims.get("email") or claims.get("sub") or "",
            "reason": reason,
            "groups": _groups(claims),
        }

    def filter_users_by_claims(self, claims):
        # A break-glass superuser is never signed in through the identity provider, whatever
        # email it asserts: that account must not depend on the provider's word.
        return super().filter_users_by_claims(claims).filter(is_superuser=False)

    def get_username(self, claims):
        preferred = claims.get("preferred_username")
        if preferred and not self.UserModel.objects.filter(username=preferred).exists():
            return preferred
        return claims["email"]

    @transaction.atomic
    def create_user(self, claims):
        user = self.UserModel.objects.create_user(
            self.get_username(claims), email=claims["email"],
            first_name=(claims.get("given_name") or "")[:150], last_name=(claims.get("family_name") or "")[:150],
        )
        log.info("single sign-on created user %s", user.get_username())
        return self._roles_sync(user, claims)

    @transaction.atomic
    def update_user(self, user, claims):
        return self._roles_sync(user, claims)

    def _roles_sync(self, user, claims):
        self.request.session.pop(REFUSAL_SESSION_KEY, None)
        grants = role_map_parse(settings.OIDC_ROLE_MAP)
        sso_roles_apply(user=user, roles=roles_for_groups(grants, _groups(claims)), managed={g.workspace for g in grants})
        return user
