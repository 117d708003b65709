"""What the sign-in page offers: single sign-on when configured, passwords unless turned off."""

from django.conf import settings

from .sso import sso_enabled


def sign_in(request):
    return {
        "sso_enabled": sso_enabled(),
        "sso_provider_name": settings.OIDC_PROVIDER_NAME,
        "password_login": settings.PASSWORD_LOGIN,
    }
