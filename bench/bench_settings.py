"""Settings for the API benchmark's server: the product's own, plus the bare endpoints it is
compared with (bare_api.py) and throttles out of the way of the load. Nothing else changes."""

from reportdesk.settings import *  # noqa: F403

ROOT_URLCONF = "bare_api"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "1000000/minute", "submit": "1000000/minute"}}  # noqa: F405
Q_CLUSTER = {**Q_CLUSTER, "name": "reportdesk-bench"}  # noqa: F405
