"""What error pages and error emails may show: Django's filter, plus credentials anywhere.

Django hides settings and request.META entries whose *name* looks secret (KEY, TOKEN,
PASS...). Under runserver request.META carries the whole process environment, and a
connection string such as DATABASE_URL, REDIS_URL or an EXTRA_DSN holds its password in the
*value*. So this filter also hides names that conventionally hold connection strings, and
masks the password of any `scheme://user:password@host` value whatever its name.
"""

import re

from django.views.debug import SafeExceptionReporterFilter

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]*)@", re.I)


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DSN|DATABASE_URL|REDIS|BROKER|CREDENTIAL|PRIVATE",
        flags=re.I,
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):  # lazy strings too (they pass isinstance)
            return _URL_CREDENTIALS.sub(rf"\g<scheme>\g<user>:{self.cleansed_substitute}@", str(cleansed))
        return cleansed
