"""Configuration checks (`manage.py check`): a role map that does not read, or single sign-on
half configured, is an error at start rather than a refused login later."""

from django.conf import settings
from django.core.checks import Error, register

from .role_map import RoleMapError, role_map_parse
from .sso import SSO_ENDPOINTS, sso_enabled


@register()
def sso_configuration(app_configs, **kwargs):
    errors = []
    try:
        role_map_parse(settings.OIDC_ROLE_MAP)
    except RoleMapError as exc:
        errors.append(Error(f"OIDC_ROLE_MAP: {exc}", id="accounts.E001"))
    if sso_enabled():
        missing = [name for name in SSO_ENDPOINTS if not getattr(settings, name)]
        if missing:
            errors.append(Error(f"Single sign-on is on (OIDC_RP_CLIENT_ID is set) but {', '.join(missing)} is not.", id="accounts.E002"))
        if not settings.OIDC_ROLE_MAP:
            errors.append(Error("Single sign-on is on but OIDC_ROLE_MAP is empty: every sign-in would be refused.", id="accounts.E003"))
    return errors
