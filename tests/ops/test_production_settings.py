"""Production settings from the environment: `check --deploy` is clean with the documented
production example, the security switches follow DEBUG, and no error page shows a secret."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import path

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"


def _boom(request):
    # The debug page quotes the source around this line: no secret may be written near it.
    raise RuntimeError("something broke")


urlpatterns = [path("boom/", _boom)]


def production_example() -> dict[str, str]:
    """The first ```sh block after the "Production example" heading of docs/configuration.md."""
    text = CONFIGURATION.read_text()
    section = text[text.index("## Production example"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    pairs = [line.split("=", 1) for line in block.splitlines() if line and not line.startswith("#")]
    return {name.strip(): value.strip().strip("'\"") for name, value in pairs}


def manage(*args, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Only what is given: nothing of the test run's own environment (a browser test's
    # DJANGO_ALLOW_ASYNC_UNSAFE, a DATABASE_URL) may leak into a production check.
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={"PATH": os.environ["PATH"], **env},
        capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_with_the_production_example_prints_no_warning():
    example = production_example()
    assert example["DEBUG"] == "false"
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr.upper().replace("LEVEL", "")


def test_with_debug_off_the_security_switches_are_on_by_default():
    example = production_example()
    probe = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)"
    )
    on = manage("shell", "-c", probe, env={"DEBUG": "false", "SECRET_KEY": example["SECRET_KEY"], "ALLOWED_HOSTS": "x.example"})
    assert on.stdout.split("\n")[-2] == "True 31536000 True True ('HTTP_X_FORWARDED_PROTO', 'https')", on.stdout + on.stderr
    # each can be turned off from the environment (a plain-HTTP staging box, say)
    off = manage(
        "shell", "-c", probe,
        env={"DEBUG": "false", "SECRET_KEY": example["SECRET_KEY"], "ALLOWED_HOSTS": "x.example", "SECURE_SSL_REDIRECT": "false",
             "SECURE_HSTS_SECONDS": "0", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false", "TRUST_X_FORWARDED_PROTO": "false"},
    )
    assert off.stdout.split("\n")[-2] == "False 0 False False None", off.stdout + off.stderr


SECRETS = {
    "DATABASE_URL": ("postgres://reportdesk:db-pass-7731@db.internal:5432/reportdesk", "db-pass-7731"),
    "REDIS_URL": ("redis://:redis-pass-5512@cache.internal:6379/0", "redis-pass-5512"),
    "EXTRA_DSN": ("postgresql://analytics:dsn-pass-9904@warehouse.internal/analytics", "dsn-pass-9904"),
    "SENTRY_ENDPOINT": ("https://robot:robot-pass-4410@sentry.internal/3", "robot-pass-4410"),
}


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__, DEBUG=True, REDIS_URL=SECRETS["REDIS_URL"][0])
def test_a_debug_error_page_shows_no_secret_from_the_environment(client):
    # under runserver request.META carries the whole process environment: put it there
    client.raise_request_exception = False
    response = client.get("/boom/", **{name: value for name, (value, _) in SECRETS.items()})
    page = response.content.decode()
    assert response.status_code == 500 and "something broke" in page  # it is Django's debug page
    for name, (value, password) in SECRETS.items():
        assert password not in page, name
    # what is still useful to read stays
    assert "sentry.internal" in page and "robot:" in page
