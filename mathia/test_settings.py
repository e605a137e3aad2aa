"""Settings for the test suite: the real settings, on the backends chosen for this run."""

import os
import uuid

from mathia.settings import *  # noqa: F403
from mathia.testing.backends import select_test_backends

TEST_BACKENDS = select_test_backends(os.environ)

# CONN_MAX_AGE=0: connections opened by database_sync_to_async in async tests are closed
# after each call, so none is left open when the test database is dropped.
DATABASES = {"default": {**TEST_BACKENDS.database, "CONN_MAX_AGE": 0}}
# A server process started by a test must use the database that test is using.
if os.environ.get("MATHIA_TEST_DATABASE_NAME"):
    DATABASES["default"] = {**DATABASES["default"], "NAME": os.environ["MATHIA_TEST_DATABASE_NAME"]}
REDIS_URL = TEST_BACKENDS.redis_url
# One prefix per test run (shared with the worker processes a test starts); tests/conftest.py
# narrows it to one prefix per test.
TEST_RUN_REDIS_PREFIX = os.environ.get("MATHIA_TEST_REDIS_PREFIX") or f"mathia-test:{uuid.uuid4().hex[:8]}:"
REDIS_KEY_PREFIX = TEST_RUN_REDIS_PREFIX
# The production cache (its options and shared pool), on this run's Redis and prefix.
CACHES = {"default": {**CACHES["default"], "LOCATION": REDIS_URL, "KEY_PREFIX": REDIS_KEY_PREFIX + "cache"}}  # noqa: F405
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": CHANNEL_LAYER_BACKENDS[CONFIG.CHANNEL_LAYER],  # noqa: F405
        "CONFIG": {"hosts": [REDIS_URL], "prefix": REDIS_KEY_PREFIX + "channels"},
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": REDIS_KEY_PREFIX + "celery:"}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
