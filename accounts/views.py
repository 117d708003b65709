"""Sign-in pages: the single sign-on round trip (404 while SSO is off) and the refusal page."""

from functools import wraps

from django.http import Http404
from django.shortcuts import render
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .sso import REFUSAL_SESSION_KEY, sso_enabled


def _sso_only(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        return view(request, *args, **kwargs)

    return wrapped


sso_start = _sso_only(OIDCAuthenticationRequestView.as_view())
sso_callback = _sso_only(OIDCAuthenticationCallbackView.as_view())


def sso_refused(request):
    """Where a failed single sign-on lands: who was refused and why, or that it failed."""
    refusal = request.session.pop(REFUSAL_SESSION_KEY, None)
    return render(request, "accounts/refused.html", {"refusal": refusal, "title": "Sign-in refused"}, status=403)
