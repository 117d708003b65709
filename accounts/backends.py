"""Password sign-in: throttled by django-axes, and optionally kept for break-glass superusers."""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every sign-in that comes over HTTP.

    Axes refuses an `authenticate()` call without a request; the only such callers are our
    own shell commands and the test client's `login()`, which no one can reach from outside.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def not_a_password_sign_in(request, credentials) -> bool:
    """AXES_WHITELIST_CALLABLE: only password sign-ins count towards a lockout. A single
    sign-on callback carries no username; counting it would lock every SSO user behind the
    same office address out after a few refused colleagues."""
    return not (credentials or {}).get("username")


class PasswordBackend(ModelBackend):
    """Django's username and password check. With PASSWORD_LOGIN off, only a superuser may
    sign in this way (the break-glass account); everyone else signs in through SSO."""

    def user_can_authenticate(self, user):
        if not settings.PASSWORD_LOGIN and not user.is_superuser:
            return False
        return super().user_can_authenticate(user)
