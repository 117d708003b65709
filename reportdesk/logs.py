"""Structured logs through structlog: one JSON object per line in production, readable lines
in development.

Every logger, ours (`logging.getLogger(__name__)`), Django's, django-q2's and
django-structlog's, goes through one formatter, which adds what is bound in
`structlog.contextvars` where the line is logged: the request id in a web request (and the
job's public id on a job's pages and API routes), the job's public id and attempt in a
worker's step, the dispatcher's token in the dispatcher. Fields passed as `extra=` become
keys of the line.
"""

import re

import structlog
from django.core.exceptions import ImproperlyConfigured

FORMATS = ("json", "console")
# Query parameters that carry a credential: single sign-on's authorization code and state
# (in the callback URL every request line names), and tokens some clients put in URLs.
_SECRET_QUERY = re.compile(r"([?&](?:code|state|session_state|token|access_token|id_token)=)[^&\s]*", re.IGNORECASE)


def redact_query_secrets(logger, method_name, event_dict):
    """A structlog processor: the request line without them (django-structlog's `request`,
    or the request object Django's own loggers pass, written as its line)."""
    request = event_dict.get("request")
    if request is not None and not isinstance(request, str) and hasattr(request, "get_full_path"):
        request = f"{request.method} {request.get_full_path()}"
    if isinstance(request, str) and "=" in request:
        event_dict["request"] = _SECRET_QUERY.sub(r"\1[redacted]", request)
    return event_dict


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def logging_config(*, fmt: str, level: str) -> dict:
    """The LOGGING dict for `fmt` ("json" or "console"); configures structlog to match."""
    if fmt not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {"()": "reportdesk.logs.structured_formatter", "fmt": fmt},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        # django-axes announces itself at every start; its sign-in failures still log.
        "loggers": {"httpx": {"level": "WARNING"}, "django_q": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
    }


def structured_formatter(*, fmt: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter every handler uses: stdlib records and structlog events alike."""
    if fmt == "json":
        render = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        render = [structlog.dev.ConsoleRenderer(colors=False)]
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact_query_secrets, *render],
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
    )
