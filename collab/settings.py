"""Settings for collab, all driven by environment variables (see README)."""

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name, default):
    """Read a boolean variable; anything but the usual spellings is an error."""
    value = os.environ.get(name, default)
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, not {value!r}")


def envint(name, default):
    """Read a non-negative integer variable."""
    value = os.environ.get(name, default)
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None
    if number < 0:
        raise ImproperlyConfigured(f"{name} must not be negative")
    return number


def envfloat(name, default):
    """Read a positive number of seconds."""
    value = os.environ.get(name, default)
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if number <= 0:
        raise ImproperlyConfigured(f"{name} must be positive")
    return number


def envrate(name, default):
    """Read a request rate such as 120/minute."""
    value = os.environ.get(name, default)
    number, _, period = value.partition("/")
    if not number.isdigit() or not period or period[0] not in "smhd":
        raise ImproperlyConfigured(f"{name} must look like 120/minute, not {value!r}")
    return value


def envlist(name, default=""):
    """Read a comma-separated list."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for: `make run` asks for it, a plain daphne start is a production start.
DEBUG = envbool("DJANGO_DEBUG", "0")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set (DJANGO_DEBUG is off; DJANGO_DEBUG=1 is for development only)"
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"  # noqa: S105

COLLAB_PUBLIC_URL = os.environ.get("COLLAB_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
_public = urlsplit(COLLAB_PUBLIC_URL)
if _public.scheme not in ("http", "https") or not _public.hostname:
    raise ImproperlyConfigured("COLLAB_PUBLIC_URL must be an http:// or https:// URL")

ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
if _public.hostname not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_public.hostname)
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]
_PUBLIC_IS_HTTPS = _public.scheme == "https"

# Production over HTTPS: `manage.py check --deploy` reports nothing (README "Deployment").
_SECURE = _PUBLIC_IS_HTTPS and not DEBUG
SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", "1" if _SECURE else "0")
# A load balancer probes /healthz over plain HTTP on the inside; it must get the answer, not a redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _PUBLIC_IS_HTTPS
SECURE_HSTS_SECONDS = envint("DJANGO_SECURE_HSTS_SECONDS", str(365 * 24 * 3600) if _SECURE else "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", "1")
SECURE_HSTS_PRELOAD = envbool("DJANGO_SECURE_HSTS_PRELOAD", "1")
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" (the header and the value it sends).
_proxy_ssl_header = envlist("DJANGO_SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2 or not _proxy_ssl_header[0].startswith("HTTP_"):
        raise ImproperlyConfigured(
            'DJANGO_SECURE_PROXY_SSL_HEADER must look like "HTTP_X_FORWARDED_PROTO,https"'
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "sessions_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "collab.urls"
ASGI_APPLICATION = "collab.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Each server process does its database work on one thread: keep its connection.
        conn_max_age=envint("COLLAB_DB_CONN_MAX_AGE", "60"),
        conn_health_checks=True,
    )
}
if os.environ.get("COLLAB_TEST_DATABASE"):
    # Lets concurrent test runs on one PostgreSQL server keep to their own test databases.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["COLLAB_TEST_DATABASE"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several daphne threads write at once; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # Write-ahead logging: a commit is one fsync of the log instead of the rollback journal's
    # several (1.5 ms to 0.4 ms for an update here), still durable (synchronous stays FULL),
    # and readers (every process's hub) no longer wait for a writer.
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
COLLAB_REDIS_PREFIX = os.environ.get("COLLAB_REDIS_PREFIX", "collab")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 times reads out after 5 s by default, as long as channels-redis's
                # blocking BZPOPMIN waits: an idle socket's receive would fail with TimeoutError.
                # It also caps a pool at 100 connections and then fails at once: a crowd of
                # viewers joining together needs more (earlier redis-py had no cap).
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "max_connections": 5000}],
                "prefix": COLLAB_REDIS_PREFIX,
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("COLLAB_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# collab's own settings, each documented in the README.
COLLAB_ALLOWED_ORIGINS = envlist("COLLAB_ALLOWED_ORIGINS")
# The REST API and Edit in Word's endpoint are same-origin unless COLLAB_ALLOWED_ORIGINS lists
# other browser origins; the field's editor plugin sends its integration key in a Token header.
CORS_URLS_REGEX = r"^/(api|edit-in-word)/.*$"
CORS_ALLOW_HEADERS = (*cors_default_headers, "token")
CORS_ALLOW_ALL_ORIGINS = "*" in COLLAB_ALLOWED_ORIGINS
CORS_ALLOWED_ORIGINS = [origin for origin in COLLAB_ALLOWED_ORIGINS if origin != "*"]
CSRF_TRUSTED_ORIGINS += CORS_ALLOWED_ORIGINS
# Per-socket message rate (sessions_app/access.py) and connection limits (connection_limits.py).
COLLAB_RATE_LIMIT_MESSAGES = envint("COLLAB_RATE_LIMIT_MESSAGES", "300")
COLLAB_RATE_LIMIT_WINDOW = envfloat("COLLAB_RATE_LIMIT_WINDOW", "10")
COLLAB_RATE_LIMIT_BURST = envint("COLLAB_RATE_LIMIT_BURST", "100")
COLLAB_MAX_CONNECTIONS_PER_ADDRESS = envint("COLLAB_MAX_CONNECTIONS_PER_ADDRESS", "5000")
COLLAB_MAX_CONNECTIONS_PER_TOKEN = envint("COLLAB_MAX_CONNECTIONS_PER_TOKEN", "5000")
COLLAB_MAX_CONNECTIONS_PER_WORD_TOKEN = envint("COLLAB_MAX_CONNECTIONS_PER_WORD_TOKEN", "20")
COLLAB_TRUSTED_PROXIES = envlist("COLLAB_TRUSTED_PROXIES")
for _proxy in COLLAB_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"COLLAB_TRUSTED_PROXIES: {_proxy!r} is not an address or network"
        ) from None
# Connections the kernel queues for each of daphne's listening sockets until it accepts them
# (Twisted's own is 50, too few for a crowd arriving at once); Linux caps it at net.core.somaxconn.
COLLAB_LISTEN_BACKLOG = envint("COLLAB_LISTEN_BACKLOG", "4096")
if COLLAB_LISTEN_BACKLOG < 1:
    raise ImproperlyConfigured("COLLAB_LISTEN_BACKLOG must be at least 1")
# Allocations between two collections of young objects in a daphne process (Python's own: 700);
# see sessions_app/daphne_adaptations.py, "Garbage collection".
COLLAB_GC_THRESHOLD = envint("COLLAB_GC_THRESHOLD", "10000")
if COLLAB_GC_THRESHOLD < 1:
    raise ImproperlyConfigured("COLLAB_GC_THRESHOLD must be at least 1")
COLLAB_MAX_MESSAGE_BYTES = envint("COLLAB_MAX_MESSAGE_BYTES", str(32 * 1024 * 1024))
# HTTP under daphne (sessions_app/daphne_adaptations.py): the largest request body besides a
# document upload's (COLLAB_MAX_MESSAGE_BYTES), and seconds to send a request line and headers.
COLLAB_MAX_REQUEST_BYTES = envint("COLLAB_MAX_REQUEST_BYTES", str(1024 * 1024))
COLLAB_HTTP_HEADER_TIMEOUT = envfloat("COLLAB_HTTP_HEADER_TIMEOUT", "15")
# Bytes the not yet signed-in sockets of one address may have sent (connection_limits.py):
# two full-size first updates by default, as the add-in's first message may be a whole document.
COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS = envint(
    "COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS", str(2 * COLLAB_MAX_MESSAGE_BYTES)
)
if 0 < COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS < COLLAB_MAX_MESSAGE_BYTES:
    raise ImproperlyConfigured(
        "COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS must be 0 or at least COLLAB_MAX_MESSAGE_BYTES: "
        "a first message may be a whole document"
    )
COLLAB_AUTH_TIMEOUT = envfloat("COLLAB_AUTH_TIMEOUT", "10")
# A socket with more than this many bytes waiting to be sent gets only the newest document,
# and is closed (4408) when it stays that far behind for COLLAB_SLOW_VIEWER_SECONDS.
COLLAB_SEND_BUFFER_BYTES = envint("COLLAB_SEND_BUFFER_BYTES", str(1024 * 1024))
COLLAB_SLOW_VIEWER_SECONDS = envfloat("COLLAB_SLOW_VIEWER_SECONDS", "30")
# Each process's cache of current documents and their encoded frames (sessions_app/hub.py).
COLLAB_DOCUMENT_CACHE_BYTES = envint("COLLAB_DOCUMENT_CACHE_BYTES", str(256 * 1024 * 1024))
# A version notice (sessions_app/version_notices.py) carries HTML up to this long to the other
# processes, which then need not read it from the database; 0: never.
COLLAB_NOTICE_HTML_BYTES = envint("COLLAB_NOTICE_HTML_BYTES", str(64 * 1024))
# Versions with more top-level blocks than this get no html-patch: the full document goes.
COLLAB_PATCH_MAX_BLOCKS = envint("COLLAB_PATCH_MAX_BLOCKS", "50000")
COLLAB_MAX_REVISIONS = envint("COLLAB_MAX_REVISIONS", "200")
# The most HTML a session's revisions may hold together; the oldest go first, the newest stays.
COLLAB_MAX_REVISION_BYTES = envint("COLLAB_MAX_REVISION_BYTES", str(1024 * 1024 * 1024))
COLLAB_CONVERSION_WORKERS = envint("COLLAB_CONVERSION_WORKERS", "2") or 1
COLLAB_CONVERSION_TIMEOUT = envfloat("COLLAB_CONVERSION_TIMEOUT", "60")
COLLAB_MAX_UNCOMPRESSED_BYTES = envint("COLLAB_MAX_UNCOMPRESSED_BYTES", str(256 * 1024 * 1024))
COLLAB_MAX_PARTS = envint("COLLAB_MAX_PARTS", "2000")
COLLAB_MAX_COMPRESSION_RATIO = envint("COLLAB_MAX_COMPRESSION_RATIO", "200")
COLLAB_MAX_XML_DEPTH = envint("COLLAB_MAX_XML_DEPTH", "512")
COLLAB_MAX_IMAGES = envint("COLLAB_MAX_IMAGES", "500")
COLLAB_MAX_IMAGE_BYTES = envint("COLLAB_MAX_IMAGE_BYTES", str(16 * 1024 * 1024))
COLLAB_MAX_TOTAL_IMAGE_BYTES = envint("COLLAB_MAX_TOTAL_IMAGE_BYTES", str(32 * 1024 * 1024))
COLLAB_MAX_HTML_BYTES = envint("COLLAB_MAX_HTML_BYTES", str(64 * 1024 * 1024))
COLLAB_MAX_HTML_DEPTH = envint("COLLAB_MAX_HTML_DEPTH", "512")
COLLAB_MAX_HTML_ELEMENTS = envint("COLLAB_MAX_HTML_ELEMENTS", "500000")
COLLAB_CONVERSION_SHARE_SECONDS = envfloat("COLLAB_CONVERSION_SHARE_SECONDS", "10")
COLLAB_CONVERSION_MEMORY_BYTES = envint("COLLAB_CONVERSION_MEMORY_BYTES", str(2048 * 1024 * 1024))
# Memory each conversion worker spends keeping sessions' last conversions, so that the next
# version converts only the blocks that changed; 0 converts every version whole.
COLLAB_CONVERSION_KEPT_BYTES = envint("COLLAB_CONVERSION_KEPT_BYTES", str(256 * 1024 * 1024))
# The hosts of Office on the web that may frame the Word add-in's task pane (its CSP frame-ancestors).
COLLAB_ADDIN_FRAME_ANCESTORS = envlist(
    "COLLAB_ADDIN_FRAME_ANCESTORS",
    "https://*.officeapps.live.com,https://*.office.com,https://*.office365.com,https://*.sharepoint.com,"
    "https://*.microsoft365.com,https://*.cloud.microsoft,https://onedrive.live.com,https://teams.microsoft.com",
)
for _ancestor in COLLAB_ADDIN_FRAME_ANCESTORS:
    if not re.fullmatch(r"https://(\*\.)?[a-z0-9.-]+(:[0-9]+)?", _ancestor):
        raise ImproperlyConfigured(
            f"COLLAB_ADDIN_FRAME_ANCESTORS: {_ancestor!r} is not an https:// host such as https://*.office.com"
        )
COLLAB_WORD_TOKEN_DAYS = envint("COLLAB_WORD_TOKEN_DAYS", "30")
COLLAB_CLIENT_TOKEN_DAYS = envint("COLLAB_CLIENT_TOKEN_DAYS", "30")
# A shorter life for the word tokens handed out as publish codes (sessions_app/services.py); 0: as above.
COLLAB_PUBLISH_CODE_HOURS = envint("COLLAB_PUBLISH_CODE_HOURS", "0")
if COLLAB_PUBLISH_CODE_HOURS > 24 * 3660:
    raise ImproperlyConfigured("COLLAB_PUBLISH_CODE_HOURS must be at most 87840 (ten years)")
COLLAB_SESSION_IDLE_TIMEOUT = envint("COLLAB_SESSION_IDLE_TIMEOUT", str(2 * 3600))
COLLAB_SESSION_MAX_AGE = envint("COLLAB_SESSION_MAX_AGE", str(24 * 3600))
COLLAB_KEEP_ENDED = envint("COLLAB_KEEP_ENDED", "30")
COLLAB_SWEEP_INTERVAL = envint("COLLAB_SWEEP_INTERVAL", "60")
# Seconds between checks for sessions of this process's sockets ended elsewhere (one indexed query,
# only while sockets are open), so `manage.py end_session` reaches them on the in-memory layer; 0: none.
COLLAB_ENDED_CHECK_INTERVAL = envint("COLLAB_ENDED_CHECK_INTERVAL", "2")
COLLAB_API_TOKEN_RATE = envrate("COLLAB_API_TOKEN_RATE", "120/minute")
# Edit in Word (sessions_app/edit_in_word.py): requests per integration key, and how long a
# launch link's .docx can be downloaded (it also goes when its session ends).
COLLAB_INTEGRATION_KEY_RATE = envrate("COLLAB_INTEGRATION_KEY_RATE", "120/minute")
COLLAB_LAUNCH_LINK_TTL = envint("COLLAB_LAUNCH_LINK_TTL", "3600")
if not COLLAB_LAUNCH_LINK_TTL:
    raise ImproperlyConfigured("COLLAB_LAUNCH_LINK_TTL must be a positive number of seconds")
COLLAB_API_PAGE_SIZE = envint("COLLAB_API_PAGE_SIZE", "50") or 50
# Failed sign-ins (API Basic and the admin's login) per user name and per client address.
COLLAB_LOGIN_FAILURES_PER_USER = envrate("COLLAB_LOGIN_FAILURES_PER_USER", "10/hour")
COLLAB_LOGIN_FAILURES_PER_ADDRESS = envrate("COLLAB_LOGIN_FAILURES_PER_ADDRESS", "50/hour")

# The REST API (sessions_app/api.py, docs/API.md).
REST_FRAMEWORK = {
    # The first class's challenge is the 401's WWW-Authenticate: Bearer, never Basic (docs/API.md).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "sessions_app.authentication.SessionTokenAuthentication",
        "sessions_app.authentication.StaffBasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["sessions_app.authentication.SessionTokenRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "sessions_app.api.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "collab REST API",
    "DESCRIPTION": "Manage collab sessions and tokens, read and publish documents. See docs/API.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs pages are public and never fail on a stale Authorization header.
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc from our own static files, so the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
if REDIS_URL:
    # API throttle and failed sign-in counters are shared by every process.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("COLLAB_REDIS_PREFIX", "collab"),
        }
    }
