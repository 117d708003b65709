"""Report providers behind one small interface (see base.py): OpenAI's Responses API in
background mode, and the built-in local engine used when no API key is set.

`get_provider()` hands out one provider per process and configuration, reused by every task
and thread: building an OpenAI client (its HTTP pool, the TLS bundle) costs far more than a
poll, and one client keeps its connections to the API open between polls. The SDK's client
is safe to share between threads.
"""

import threading

from django.conf import settings

from .base import Provider

_providers: dict[tuple, Provider] = {}
_lock = threading.Lock()


def _configuration() -> tuple:
    if settings.REPORT_PROVIDER == "local":
        return ("local", settings.LOCAL_PROVIDER_SECONDS, settings.LOCAL_PROVIDER_FAULT)
    return ("openai", settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.OPENAI_TIMEOUT_SECONDS, settings.PROVIDER_STREAM)


def _build(configuration: tuple) -> Provider:
    if configuration[0] == "local":
        from .local import LocalProvider

        return LocalProvider()
    from .openai_provider import OpenAIProvider

    _, api_key, base_url, timeout, stream = configuration
    return OpenAIProvider(api_key=api_key, base_url=base_url, timeout=timeout, stream=stream)


def get_provider() -> Provider:
    """The provider of the current settings, built once per process. Keyed by the settings it
    reads, so a changed setting (a test's override) gets a provider of its own."""
    configuration = _configuration()
    provider = _providers.get(configuration)
    if provider is None:
        with _lock:
            provider = _providers.get(configuration) or _providers.setdefault(configuration, _build(configuration))
    return provider
