"""Template context for the admin: the provider holds in force, for the operators' banner."""

from django.utils.functional import SimpleLazyObject

from .breaker import breakers_open


def provider_holds(request):
    """Lazy: the query runs only on admin pages of a signed-in user, where the banner is drawn."""
    user = getattr(request, "user", None)
    if not request.path.startswith("/admin/") or user is None or not user.is_authenticated:
        return {}
    return {"provider_holds": SimpleLazyObject(breakers_open)}
