"""Report providers behind one small interface (see base.py): OpenAI's Responses API in
background mode, and the built-in local engine used when no API key is set."""

from django.conf import settings

from .base import Provider


def get_provider() -> Provider:
    if settings.REPORT_PROVIDER == "local":
        from .local import LocalProvider

        return LocalProvider()
    from .openai_provider import OpenAIProvider

    return OpenAIProvider(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT_SECONDS,
    )
