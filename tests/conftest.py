from pathlib import Path

import pytest


def pytest_configure(config):
    # The SQLite test database lives in var/ (see settings) so worker subprocesses share it.
    (Path(__file__).resolve().parent.parent / "var").mkdir(exist_ok=True)


@pytest.fixture
def openai_fake():
    """A loopback fake of the Responses API; every request it got must have been valid."""
    from tests.fakes.responses_api import ResponsesAPIFake

    with ResponsesAPIFake() as fake:
        yield fake
        assert fake.validation_errors == []
        assert fake.internal_errors == []


@pytest.fixture
def openai_provider(openai_fake):
    from jobs.providers.openai_provider import OpenAIProvider

    return OpenAIProvider(api_key="sk-test", base_url=openai_fake.base_url, timeout=2.0)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.REPORT_PROVIDER = "local"
    settings.LOCAL_PROVIDER_SECONDS = 0.0
    settings.LOCAL_PROVIDER_FAULT = ""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.POLL_JITTER = 0.0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config, items):
    from django.db import connection

    for item in items:
        if "/tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)

    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def worker(transactional_db, tmp_path):
    """Start real `manage.py qcluster` processes on the test database: `worker(**env)`.

    Fast cadence for tests: the local provider takes 2 s, the first poll comes after 0.5 s.
    Every process started is killed at teardown; its log is in tmp_path.
    """
    import os

    from tests.workers import WorkerProcess, test_database_url

    started = []

    def start(**env_overrides):
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": "",
            "REPORT_PROVIDER": "local",
            "OPENAI_API_KEY": "",
            "Q_WORKERS": "2",
            "LOCAL_PROVIDER_SECONDS": "2",
            "POLL_FIRST_SECONDS": "0.5",
            "POLL_STREAMED_SECONDS": "0.5",  # tests that step scripted responses by their polls
            "POLL_MAX_SECONDS": "2",
            "TICK_INTERVAL": "0.2",
            "LOG_LEVEL": "INFO",
            "MEDIA_ROOT": str(tmp_path / "media"),
            **{k: str(v) for k, v in env_overrides.items()},
        }
        process = WorkerProcess(log_path=tmp_path / f"worker-{len(started)}.log", env=env).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
