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
    "django.contrib.admin",
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
    "reportdesk",
    "sources",
    "jobs",
    "reviews",
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "django_q": {"level": "WARNING"}},
}

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
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    # Shared by every web process, so API throttles count across them.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = env.float("Q_ORM_POLL", default=0.2)

# --- Provider -----------------------------------------------------------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_WEBHOOK_SECRET = env.str("OPENAI_WEBHOOK_SECRET", default="")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=60.0)
# "openai" or "local"; by default the local provider stands in when no key is set.
REPORT_PROVIDER = env.str("REPORT_PROVIDER", default="openai" if OPENAI_API_KEY else "local")
# How long the local provider takes from queued to completed, in seconds.
LOCAL_PROVIDER_SECONDS = env.float("LOCAL_PROVIDER_SECONDS", default=6.0)

# USD per 1M tokens, per model; tool calls per call. Overridable as JSON in PRICE_TABLE.
PRICE_TABLE = env.json(
    "PRICE_TABLE",
    default={
        "gpt-5.2": {"input": "1.75", "cached_input": "0.175", "output": "14.00"},
        "gpt-5-mini": {"input": "0.25", "cached_input": "0.025", "output": "2.00"},
        "gpt-4.1": {"input": "2.00", "cached_input": "0.50", "output": "8.00"},
        "local-extractive": {"input": "0", "cached_input": "0", "output": "0"},
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
POLL_FIRST_SECONDS = env.float("POLL_FIRST_SECONDS", default=6.7)
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
LEASE_SECONDS = env.int("LEASE_SECONDS", default=120)
PROVIDER_MAX_AUTO_RETRIES = env.int("PROVIDER_MAX_AUTO_RETRIES", default=3)
PROVIDER_RETRY_BASE_SECONDS = env.float("PROVIDER_RETRY_BASE_SECONDS", default=5.0)

# --- Limits -------------------------------------------------------------------------------
SOURCE_MAX_BYTES = env.int("SOURCE_MAX_BYTES", default=10 * 1024 * 1024)
SOURCE_FETCH_TIMEOUT = env.float("SOURCE_FETCH_TIMEOUT", default=15.0)
SOURCE_MAX_REDIRECTS = env.int("SOURCE_MAX_REDIRECTS", default=5)
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
