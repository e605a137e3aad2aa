"""Django settings. The only module that reads the environment (through core.config)."""

from __future__ import annotations

import os
import sys

from celery.schedules import crontab

from mathia.core.config import PROJECT_ROOT, ConfigError, load_config
from mathia.core.logging import logging_config

try:
    CONFIG = load_config(os.environ)
except ConfigError as error:
    # Stop start-up with the variable's name; a traceback would add nothing and could
    # tempt someone to paste a value into an issue.
    sys.stderr.write(f"Mathia cannot start: {error}\n")
    raise SystemExit(2) from None

BASE_DIR = PROJECT_ROOT
MATHIA_ENV = CONFIG.MATHIA_ENV
DEBUG = CONFIG.DEBUG
SECRET_KEY = CONFIG.secret_key()
DATA_DIR = CONFIG.DATA_DIR
ALLOWED_HOSTS = CONFIG.ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]"]
CSRF_TRUSTED_ORIGINS = CONFIG.CSRF_TRUSTED_ORIGINS

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "django_structlog",
    "mathia.core",
    "mathia.accounts",
    "mathia.workspaces",
    "mathia.health",
    "mathia.rooms",
    "mathia.chat",
    "mathia.realtime",
    "mathia.assistant",
    "mathia.goals",
    "mathia.wallet",
    "mathia.onboarding",
    "mathia.usersettings",
    "mathia.tools",
    "mathia.mcpbridge",
    "mathia.reminders",
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
    "allauth.account.middleware.AccountMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "mathia.core.middleware.AppErrorMiddleware",
    "mathia.onboarding.middleware.OnboardingRequiredMiddleware",
]

ROOT_URLCONF = "mathia.urls"
ASGI_APPLICATION = "mathia.asgi.application"

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

# --- Data -----------------------------------------------------------------------------
DATABASES = {"default": CONFIG.database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# REDIS_URL is empty only for `make run`, which starts a private Redis and passes its URL
# to every child; a process started without it falls back to the conventional local port.
REDIS_URL = CONFIG.REDIS_URL.get_secret_value() if CONFIG.REDIS_URL else "redis://127.0.0.1:6379/0"
# Every Redis key Mathia writes starts with this, so tests (and several deployments on one
# Redis) get disjoint keyspaces.
REDIS_KEY_PREFIX = "mathia:"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
        # One pool per process, not one per request or socket (see SharedConnectionPool).
        "OPTIONS": {
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
            "pool_class": "mathia.core.redis.SharedConnectionPool",
        },
    }
}
# Delivery to browsers. "pubsub" (RedisPubSubChannelLayer) publishes a room event once per
# event and each web process fans it out to its own sockets; "core" (RedisChannelLayer)
# queues one copy per socket. docs/architecture.md and docs/performance.md say why pubsub.
CHANNEL_LAYER_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": CHANNEL_LAYER_BACKENDS[CONFIG.CHANNEL_LAYER],
        "CONFIG": {"hosts": [REDIS_URL], "prefix": REDIS_KEY_PREFIX + "channels"},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": REDIS_KEY_PREFIX + "celery:"}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "assistant-reap-stale-runs": {"task": "assistant.reap_stale_runs", "schedule": 30.0},
    # Every wallet's balance against the sum of its ledger, daily; differences are logged as critical.
    "wallet-reconcile": {"task": "wallet.reconcile", "schedule": crontab(hour=3, minute=17)},
    "tools-flush-audit": {"task": "tools.flush_audit", "schedule": 10.0},
    "mcpbridge-check-servers": {"task": "mcpbridge.check_servers", "schedule": 300.0},
    # Reminders live in the database; this claims and delivers the due ones (docs/architecture.md).
    "reminders-dispatch": {
        "task": "reminders.dispatch",
        "schedule": CONFIG.REMINDER_DISPATCH_SECONDS,
        "options": {"expires": CONFIG.REMINDER_DISPATCH_SECONDS * 2},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Accounts -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "mathia.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"signup": "mathia.accounts.forms.SignupForm"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PREVENT_ENUMERATION = True
# Login throttling lives in the shared Redis cache, so it holds across web processes.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Mathia] "

# --- Chat -----------------------------------------------------------------------------
# Messages one person may send, per window ("30/10s": 30 every 10 seconds).
MESSAGE_RATE_LIMIT = CONFIG.MESSAGE_RATE_LIMIT

# --- The assistant (@mathia) ------------------------------------------------------------
# Providers in fallback order; one without its key (or base URL) is skipped.
LLM_PROVIDERS = CONFIG.LLM_PROVIDERS
ANTHROPIC_API_KEY = CONFIG.ANTHROPIC_API_KEY.get_secret_value() if CONFIG.ANTHROPIC_API_KEY else ""
ANTHROPIC_BASE_URL = CONFIG.ANTHROPIC_BASE_URL
ANTHROPIC_MODEL = CONFIG.ANTHROPIC_MODEL
OPENAI_API_KEY = CONFIG.OPENAI_API_KEY.get_secret_value() if CONFIG.OPENAI_API_KEY else ""
OPENAI_BASE_URL = CONFIG.OPENAI_BASE_URL
OPENAI_MODEL = CONFIG.OPENAI_MODEL
LLM_FIRST_TOKEN_TIMEOUT = CONFIG.LLM_FIRST_TOKEN_TIMEOUT
LLM_IDLE_TIMEOUT = CONFIG.LLM_IDLE_TIMEOUT
LLM_MAX_RETRIES = CONFIG.LLM_MAX_RETRIES
LLM_MAX_OUTPUT_TOKENS = CONFIG.LLM_MAX_OUTPUT_TOKENS
LLM_CONTEXT_TOKENS = CONFIG.LLM_CONTEXT_TOKENS
LLM_PRICES = CONFIG.LLM_PRICES
ASSISTANT_MAX_PER_USER = CONFIG.ASSISTANT_MAX_PER_USER
ASSISTANT_MAX_PER_WORKSPACE = CONFIG.ASSISTANT_MAX_PER_WORKSPACE
ASSISTANT_MAX_TOTAL = CONFIG.ASSISTANT_MAX_TOTAL
ASSISTANT_FLUSH_MS = CONFIG.ASSISTANT_FLUSH_MS
# The model's tool-calling loop: at most this many rounds of tool calls, tokens in all rounds
# together, and seconds from the first request to the last answer.
ASSISTANT_TOOL_STEPS = CONFIG.ASSISTANT_TOOL_STEPS
ASSISTANT_TOOL_TOKENS = CONFIG.ASSISTANT_TOOL_TOKENS
ASSISTANT_TOOL_SECONDS = CONFIG.ASSISTANT_TOOL_SECONDS

# --- Connectors (the tool router) -------------------------------------------------------
# A connector without its key answers with the variable to set.
OPENWEATHER_API_KEY = CONFIG.OPENWEATHER_API_KEY.get_secret_value() if CONFIG.OPENWEATHER_API_KEY else ""
GIPHY_API_KEY = CONFIG.GIPHY_API_KEY.get_secret_value() if CONFIG.GIPHY_API_KEY else ""
GIPHY_RATING = CONFIG.GIPHY_RATING
EXCHANGERATE_API_KEY = CONFIG.EXCHANGERATE_API_KEY.get_secret_value() if CONFIG.EXCHANGERATE_API_KEY else ""

# --- Onboarding, goals and the wallet ---------------------------------------------------
# Credits a new workspace starts with; prices per provider:model in credits per 1,000 tokens
# (the built-in assistant is always free); the balance under which admins are warned.
WALLET_STARTING_GRANT = CONFIG.WALLET_STARTING_GRANT
WALLET_PRICES = CONFIG.WALLET_PRICES
WALLET_LOW_BALANCE = CONFIG.WALLET_LOW_BALANCE
# Who is mailed when the daily reconciliation finds a wallet whose balance is not its ledger's sum.
WALLET_ALERT_EMAILS = CONFIG.WALLET_ALERT_EMAILS
AVATAR_MAX_BYTES = CONFIG.AVATAR_MAX_BYTES
# --- Model Context Protocol (mathia.mcpbridge) ------------------------------------------
# Complete command lines, by name, that workspace admins may pick as stdio MCP servers (they
# choose a name, never a command or its arguments); empty: stdio off.
MCP_STDIO_SERVERS = CONFIG.MCP_STDIO_SERVERS
# Seconds Mathia waits for an external MCP server to connect and answer one request.
MCP_CLIENT_TIMEOUT = CONFIG.MCP_CLIENT_TIMEOUT
# Whether external MCP servers may be on loopback, private or link-local addresses (off: a
# workspace admin could otherwise make Mathia probe the operator's internal network).
MCP_CLIENT_PRIVATE_NETWORKS = CONFIG.MCP_CLIENT_PRIVATE_NETWORKS
# Requests one access token may make to Mathia's /mcp endpoint per window.
MCP_REQUEST_RATE_LIMIT = CONFIG.MCP_REQUEST_RATE_LIMIT

# --- Email ----------------------------------------------------------------------------
_email_backend = CONFIG.EMAIL_BACKEND or ("smtp" if CONFIG.is_production else "console")
EMAIL_BACKEND = f"django.core.mail.backends.{_email_backend}.EmailBackend"
EMAIL_HOST = CONFIG.EMAIL_HOST
EMAIL_PORT = CONFIG.EMAIL_PORT
EMAIL_HOST_USER = CONFIG.EMAIL_HOST_USER
EMAIL_HOST_PASSWORD = CONFIG.EMAIL_HOST_PASSWORD.get_secret_value()
EMAIL_USE_TLS = CONFIG.EMAIL_USE_TLS
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = CONFIG.DEFAULT_FROM_EMAIL
SERVER_EMAIL = CONFIG.DEFAULT_FROM_EMAIL

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "/static/"
# Locally WhiteNoise serves straight from the app folders; production serves collectstatic output.
STATIC_ROOT = BASE_DIR / "staticfiles" if CONFIG.is_production else None
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = not CONFIG.is_production
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if CONFIG.is_production
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"

# --- Security -------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if CONFIG.is_production:
    SECURE_SSL_REDIRECT = CONFIG.SECURE_SSL_REDIRECT
    # Probes inside the container network speak plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = CONFIG.SECURE_HSTS_SECONDS
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
if CONFIG.BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging --------------------------------------------------------------------------
LOGGING = logging_config(
    level=CONFIG.LOG_LEVEL,
    fmt=CONFIG.LOG_FORMAT or ("json" if CONFIG.is_production else "console"),
)
DJANGO_STRUCTLOG_CELERY_ENABLED = True
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = True

# --- Reminders ----------------------------------------------------------------------------
# Beat runs the dispatcher this often; a reservation a dead worker left is retaken after the lease.
REMINDER_DISPATCH_SECONDS = CONFIG.REMINDER_DISPATCH_SECONDS
REMINDER_LEASE_SECONDS = CONFIG.REMINDER_LEASE_SECONDS
REMINDER_BATCH = CONFIG.REMINDER_BATCH
