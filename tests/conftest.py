import pytest


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
