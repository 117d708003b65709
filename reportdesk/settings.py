"""Settings for reportdesk, read from the environment (django-environ; a `.env` file works).

The defaults are the embedded mode: SQLite, django-q2's ORM broker and the local provider.
Production sets DATABASE_URL, REDIS_URL, SECRET_KEY and DEBUG=false; with DEBUG off a missing
SECRET_KEY is an error rather than a silent insecure default.
"""

import os
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
_DEV_SECRET = "reportdesk-insecure-development-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, with reportdesk's site (console.site) as admin.site.
    "console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_q",
    "axes",
    "mozilla_django_oidc",
    "django_structlog",
    "reportdesk",
    "sources",
    "jobs",
    "reviews",
    "console",
    "notifications",
    "accounts",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A request id on every log line of the request (and the job's public id on a job's
    # routes: ops.log_context).
    "django_structlog.middlewares.RequestMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "reportdesk.urls"
WSGI_APPLICATION = "reportdesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.sign_in",
                "jobs.context_processors.provider_holds",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker write to the same file: wait for locks instead of failing at once, and
    # take the write lock at BEGIN so a read-then-write transaction cannot deadlock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # Tests keep the SQLite test database in a file (one per test run), so worker
    # subprocesses started by the tests can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: a web request or a worker task reuses its process's connection
# (opening one cost more than a poll's own queries), checked before reuse so a connection
# the database dropped is replaced rather than failing the request. 0 closes after each.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "reportdesk" / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "admin:login"

# --- Security: production defaults whenever DEBUG is off ------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers and orchestrators probe health over plain HTTP.
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^healthz$"])
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# The app runs behind a TLS-terminating proxy that sets X-Forwarded-Proto (and drops any value
# a client sent); without it the HTTPS redirect would loop. Turn off when nothing sets it.
if env.bool("TRUST_X_FORWARDED_PROTO", default=not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Error pages and error emails, in every mode: credentials in URLs and DSNs are masked too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "reportdesk.error_reports.SecretSafeExceptionReporterFilter"

# --- Sign-in: password (throttled), and OpenID Connect single sign-on when configured --------
AUTHENTICATION_BACKENDS = [
    # First, as django-axes asks: refuses a locked-out username and address before any check.
    "accounts.backends.LoginThrottleBackend",
    "accounts.backends.PasswordBackend",
    "accounts.sso_backend.SSOBackend",
]
# Password sign-in for everyone (true), or only for superusers as a break-glass way in.
PASSWORD_LOGIN = env.bool("PASSWORD_LOGIN", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
# Hours a lockout lasts; 0 keeps it until an operator clears it in the admin.
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_HOURS", default=1.0) or None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_WHITELIST_CALLABLE = "accounts.backends.not_a_password_sign_in"
# The address a lockout counts against. X-Forwarded-For is read only when LOGIN_PROXY_COUNT
# says how many proxies of ours add to it; otherwise any client could pick its own address.
LOGIN_PROXY_COUNT = env.int("LOGIN_PROXY_COUNT", default=0)
if LOGIN_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = LOGIN_PROXY_COUNT
    AXES_IPWARE_PROXY_ORDER = "right-most"
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# OpenID Connect (mozilla-django-oidc): on when OIDC_RP_CLIENT_ID is set. The endpoints are
# the identity provider's (its /.well-known/openid-configuration lists them).
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT_SECONDS", default=10.0)
# Match the ID token's signing key by its `kid` header; a provider with a single key that
# omits the header needs this off.
OIDC_VERIFY_KID = env.bool("OIDC_VERIFY_KID", default=True)
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
# The claim holding the user's groups, and which group gives which role in which workspace:
# "group=workspace-slug:role,..." (a group may appear more than once).
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_ROLE_MAP = env.str("OIDC_ROLE_MAP", default="")
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/sso/refused/"

# --- Logs: JSON lines in production, readable lines in development (structlog) -------------
from reportdesk.logs import logging_config  # noqa: E402

LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
DJANGO_STRUCTLOG_CELERY_ENABLED = False

# --- Prometheus ----------------------------------------------------------------------------
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, it is a 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Task queue (django-q2) -------------------------------------------------------------
# `retry` must exceed `timeout`: a task still running at `retry` is handed out again.
# Workers: one process is the dispatcher (it mostly sleeps), so there are more than CPUs and
# the rest keep every CPU busy. Successful follow-up tasks (advance_job, advance_batch) are
# not saved (jobs.queue); the rest keep the last `save_limit` successes per function, so
# pruning one function's results never scans another's.
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "reportdesk",
    "workers": env.int("Q_WORKERS", default=max(4, (os.cpu_count() or 1) + 2)),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=360),
    "max_attempts": 3,
    "queue_limit": 200,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": env.int("Q_SAVE_LIMIT", default=250),
    "save_limit_per": "func",
    "label": "Task queue",
}
# A Redis that does not answer must fail a call in seconds, not hang a request or a worker.
_REDIS_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 5}
if REDIS_URL:
    _separator = "&" if "?" in REDIS_URL else "?"
    Q_CLUSTER["redis"] = REDIS_URL + _separator + "&".join(f"{k}={v}" for k, v in _REDIS_TIMEOUTS.items())
    # Shared by every web process, so API throttles count across them.
    CACHES = {
        "default": {
            "BACKEND": "reportdesk.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": _REDIS_TIMEOUTS,
        }
    }
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = env.float("Q_ORM_POLL", default=0.2)
    # Clusters report their status through a cache; the workers page reads it from another
    # process, so it must be one every process shares (the per-process default is not).
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "django_q": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(BASE_DIR / "var" / "django-q")},
    }
    Q_CLUSTER["cache"] = "django_q"

# --- Provider -----------------------------------------------------------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_WEBHOOK_SECRET = env.str("OPENAI_WEBHOOK_SECRET", default="")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=60.0)
# "openai" or "local"; by default the local provider stands in when no key is set.
REPORT_PROVIDER = env.str("REPORT_PROVIDER", default="openai" if OPENAI_API_KEY else "local")
# How long the local provider takes from queued to completed, in seconds.
LOCAL_PROVIDER_SECONDS = env.float("LOCAL_PROVIDER_SECONDS", default=6.0)

# USD per 1M tokens, per model (a dated snapshot such as gpt-5.2-2025-12-11 bills as gpt-5.2):
# `input`, `cached_input`, `output` (reasoning tokens are output tokens), optionally
# `cache_write` (defaults to `input`) and `web_search` per search (defaults to
# `_tools.web_search`). A model missing from the table has an unknown cost (null, with a
# warning), never 0. Overridable as JSON in PRICE_TABLE; PRICE_TABLE_AS_OF dates it.
PRICE_TABLE_AS_OF = env.str("PRICE_TABLE_AS_OF", default="2026-11-01")
PRICE_TABLE = env.json(
    "PRICE_TABLE",
    default={
        "gpt-5.5": {"input": "5.00", "cached_input": "0.50", "output": "30.00"},
        "gpt-5.5-pro": {"input": "30.00", "cached_input": "30.00", "output": "180.00"},
        "gpt-5.4": {"input": "2.50", "cached_input": "0.25", "output": "15.00"},
        "gpt-5.2": {"input": "1.75", "cached_input": "0.175", "output": "14.00"},
        "gpt-5.2-pro": {"input": "21.00", "cached_input": "21.00", "output": "168.00"},
        "gpt-5.1": {"input": "1.25", "cached_input": "0.125", "output": "10.00"},
        "gpt-5": {"input": "1.25", "cached_input": "0.125", "output": "10.00"},
        "gpt-5-mini": {"input": "0.25", "cached_input": "0.025", "output": "2.00"},
        "gpt-5-nano": {"input": "0.05", "cached_input": "0.005", "output": "0.40"},
        "gpt-4.1": {"input": "2.00", "cached_input": "0.50", "output": "8.00"},
        "gpt-4.1-mini": {"input": "0.40", "cached_input": "0.10", "output": "1.60"},
        "gpt-4.1-nano": {"input": "0.10", "cached_input": "0.025", "output": "0.40"},
        "gpt-4o": {"input": "2.50", "cached_input": "1.25", "output": "10.00"},
        "gpt-4o-mini": {"input": "0.15", "cached_input": "0.075", "output": "0.60"},
        "o3": {"input": "2.00", "cached_input": "0.50", "output": "8.00"},
        "o4-mini": {"input": "1.10", "cached_input": "0.275", "output": "4.40"},
        "local-extractive": {"input": "0", "cached_input": "0", "output": "0", "web_search": "0"},
        "_tools": {"web_search": "0.01"},
    },
)
PRICE_TABLE = {
    model: {k: Decimal(str(v)) for k, v in prices.items()} for model, prices in PRICE_TABLE.items()
}

# --- Worker cadence -----------------------------------------------------------------------
# A response is checked every POLL_FIRST_SECONDS during its first POLL_FAST_SECONDS (most
# reports that finish early are caught within seconds), at POLL_FAST_SECONDS itself, then
# every POLL_MAX_SECONDS: 10 retrieves for a 2-minute response. Each check comes up to
# POLL_JITTER of its interval late, so jobs started together spread out.
# With PROVIDER_STREAM, responses are created as streams and the worker that started one
# follows its events through its first POLL_FAST_SECONDS (jobs.worker.stream_watch): the
# stream tells the moment it ends, and the checks of that minute are only a safety net,
# every POLL_STREAMED_SECONDS (5 retrieves for a 2-minute response, the stream included).
# A worker process follows at most STREAM_WATCH_LIMIT streams at once.
POLL_FIRST_SECONDS = env.float("POLL_FIRST_SECONDS", default=6.7)
POLL_STREAMED_SECONDS = env.float("POLL_STREAMED_SECONDS", default=20.0)
PROVIDER_STREAM = env.bool("PROVIDER_STREAM", default=True)
STREAM_WATCH_LIMIT = env.int("STREAM_WATCH_LIMIT", default=500)
POLL_FAST_SECONDS = env.float("POLL_FAST_SECONDS", default=60.0)
POLL_MAX_SECONDS = env.float("POLL_MAX_SECONDS", default=60.0)
POLL_JITTER = env.float("POLL_JITTER", default=0.1)
# The dispatcher (one task at a time, occupying one worker process) runs this long and then
# hands over to a successor, looking for due jobs every TICK_INTERVAL seconds. It claims up
# to TICK_BATCH due jobs per cycle and hands them on in tasks of ADVANCE_BATCH jobs; a worker
# keeps up to POLL_CONCURRENCY retrieves of a batch in flight at once and steps the jobs on
# POLL_DB_THREADS threads (one database connection each, beside the task's own).
TICK_SECONDS = env.float("TICK_SECONDS", default=60.0)
TICK_INTERVAL = env.float("TICK_INTERVAL", default=0.5)
TICK_BATCH = env.int("TICK_BATCH", default=200)
ADVANCE_BATCH = env.int("ADVANCE_BATCH", default=50)
POLL_CONCURRENCY = env.int("POLL_CONCURRENCY", default=32)
POLL_DB_THREADS = env.int("POLL_DB_THREADS", default=4)  # 0: on the task's own thread
# A worker holds a job for LEASE_SECONDS and renews it every quarter of that while a step
# runs, so a worker that dies frees its jobs within LEASE_SECONDS.
LEASE_SECONDS = env.int("LEASE_SECONDS", default=20)
# A create that got no answer (timeout, dropped connection, a worker that died) may have
# started a response: no new create for this long after it, unless a webhook names it first.
CREATE_RECONCILE_SECONDS = env.float("CREATE_RECONCILE_SECONDS", default=30.0)
PROVIDER_MAX_AUTO_RETRIES = env.int("PROVIDER_MAX_AUTO_RETRIES", default=3)
PROVIDER_RETRY_BASE_SECONDS = env.float("PROVIDER_RETRY_BASE_SECONDS", default=5.0)
# The circuit breaker (jobs.breaker): after a quota or credential failure the first probe
# comes BREAKER_PROBE_SECONDS later, then twice as late each time, up to the max. A probe is a
# 16-token unstored request to PROVIDER_PROBE_MODEL.
BREAKER_PROBE_SECONDS = env.float("BREAKER_PROBE_SECONDS", default=60.0)
BREAKER_PROBE_MAX_SECONDS = env.float("BREAKER_PROBE_MAX_SECONDS", default=900.0)
PROVIDER_PROBE_MODEL = env.str("PROVIDER_PROBE_MODEL", default="gpt-5-nano")
# Delete our stored responses at the provider this many days after their job finished (the
# provider keeps them 30 days otherwise). Empty: never delete them ourselves.
PROVIDER_DELETE_AFTER_DAYS = env.int("PROVIDER_DELETE_AFTER_DAYS", default=None)

# --- Limits -------------------------------------------------------------------------------
SOURCE_MAX_BYTES = env.int("SOURCE_MAX_BYTES", default=10 * 1024 * 1024)
SOURCE_FETCH_TIMEOUT = env.float("SOURCE_FETCH_TIMEOUT", default=15.0)
SOURCE_MAX_REDIRECTS = env.int("SOURCE_MAX_REDIRECTS", default=5)
# A TrueType font for PDF exports (any script); empty: DejaVu Sans where the system has it,
# else the built-in Helvetica with the text narrowed to Latin-1.
EXPORT_PDF_FONT = env.str("EXPORT_PDF_FONT", default="")
# Hosts that may be fetched even though they resolve to internal addresses.
SOURCE_ALLOWED_INTERNAL_HOSTS = env.list("SOURCE_ALLOWED_INTERNAL_HOSTS", default=[])
CONTEXT_BUDGET_CHARS = env.int("CONTEXT_BUDGET_CHARS", default=120_000)
REVIEW_CLAIM_MINUTES = env.int("REVIEW_CLAIM_MINUTES", default=30)
REVIEW_SLA_HOURS = env.int("REVIEW_SLA_HOURS", default=24)
DATA_UPLOAD_MAX_MEMORY_SIZE = SOURCE_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Inject a fault into every local-provider response (demos, tests): "", "fail",
# "incomplete", "policy", "create_transient", "create_error".
LOCAL_PROVIDER_FAULT = env.str("LOCAL_PROVIDER_FAULT", default="")

# --- Notifications (the notifications app) ----------------------------------------------------
# Mail goes through Django's email framework, configured by one URL (django-environ's
# convention: smtp+tls://user:password@host:587, consolemail://, ...). The embedded default
# prints mails to the log, so `make run` shows them.
# Parts the URL leaves out keep Django's defaults.
vars().update({k: v for k, v in env.email_url("EMAIL_URL", default="consolemail://").items() if v not in (None, "")})
# A mail server that takes the connection and never answers must not hold a worker (and the
# mails and chat message after it) until the task's timeout: one exchange gives up after this.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT_SECONDS", default=10.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="reportdesk <reportdesk@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in mails and chat messages point here (scheme, host and port, no trailing slash).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Outbound webhooks: seconds to wait before each retry of a failed delivery (the scheduler
# looks for due retries every minute), the timeout of one POST, and how many failed attempts
# in a row disable an endpoint.
WEBHOOK_RETRY_SCHEDULE = env.list("WEBHOOK_RETRY_SCHEDULE", cast=int, default=[60, 300, 1800, 7200, 18000, 36000])
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=15)
# A job due for a check longer than this is stuck: no worker is moving it. Operators hear of it.
STUCK_JOB_MINUTES = env.int("STUCK_JOB_MINUTES", default=15)
# The hour (TIME_ZONE) at which reviewers who chose the daily digest get it.
DIGEST_HOUR = env.int("DIGEST_HOUR", default=8)
# Days the log of what was sent (webhook deliveries, mails, chat messages) is kept; 0 keeps it.
NOTIFICATION_LOG_DAYS = env.int("NOTIFICATION_LOG_DAYS", default=90)

# --- REST API (reportdesk.api) --------------------------------------------------------------
# Swagger UI's assets come from drf-spectacular-sidecar, served as static files (no CDN).
INSTALLED_APPS += ["drf_spectacular_sidecar"]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated call gets 401 with `WWW-Authenticate: Token`.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["reportdesk.api.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "reportdesk.api.pagination.ApiPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["reportdesk.api.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="600/minute"),
        "submit": env.str("API_THROTTLE_SUBMIT", default="60/minute"),
    },
    "EXCEPTION_HANDLER": "reportdesk.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "reportdesk.api.schema.ApiAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "reportdesk API",
    "DESCRIPTION": "Submit, follow, act on and download AI research reports. Token auth "
    "(`Authorization: Token <key>`; `manage.py drf_create_token <user>`) or a session. Errors are "
    '`{"error": {"code", "message", "fields"}}`. See docs/api.md.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "jobs.models.JobStatus",
        "ReviewStateEnum": "jobs.models.ReviewState",
        "SourceStatusEnum": "sources.models.SourceStatus",
        "SourceKindEnum": "sources.models.SourceKind",
        "ActorKindEnum": "jobs.models.ActorKind",
        "ReportTypeEnum": "jobs.models.ReportType",
        "TemplateModeEnum": "jobs.models.TemplateMode",
        "DecisionEnum": "reviews.models.Decision",
    },
}
