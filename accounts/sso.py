"""Whether single sign-on (OpenID Connect) is on, and what it needs; off unless configured.

The sign-in backend itself is accounts.sso_backend: it pulls in mozilla-django-oidc's HTTP
client (requests), which only a sign-in needs, so the configuration check, the sign-in page
and every worker read these few names from here instead (memory of every process).
"""

from django.conf import settings

SSO_ENDPOINTS = ("OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT")
# What the refusal page shows, kept in the session of the refused browser.
REFUSAL_SESSION_KEY = "sso_refusal"


def sso_enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID)
