"""Tidings settings: one module, configured entirely by environment variables.

Every variable is listed, with its meaning, in `.env.example`. With DEBUG off
(production) the variables marked required must be set, or start-up stops with a
message naming the missing one. With DEBUG on and nothing else configured, the app
runs as the embedded demo: SQLite under var/, tasks in-process, mail to /dev/outbox/.
"""

from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from config.env import (
    env_anymail,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", default=False)
PRODUCTION = not DEBUG

SECRET_KEY = env_str("SECRET_KEY", "insecure-development-key-never-use-in-production", required=PRODUCTION)
# Previous keys, still accepted after a rotation: links in mail already sent keep working.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
# Suppression entries are HMACs under their own key, so rotating SECRET_KEY (which
# revokes sessions and confirmation links) does not forget who asked never to be mailed.
SUPPRESSION_KEY = env_str("SUPPRESSION_KEY", "insecure-development-suppression-key", required=PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else None)
if PRODUCTION and not ALLOWED_HOSTS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Environment variable ALLOWED_HOSTS is required but not set.")

# Absolute base of every link in an email (confirmation, manage, unsubscribe).
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", schemes=("http", "https"), required=PRODUCTION).rstrip("/")
# Those links carry manage and unsubscribe tokens that never expire: over plain HTTP any
# network on the way could read them. SECURE_COOKIES=false, the switch for trying a
# production build over HTTP on your own machine, is the one way round it.
if PRODUCTION and not SITE_URL.startswith("https://") and env_bool("SECURE_COOKIES", default=True):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "Environment variable SITE_URL must start with https:// in production: its links carry tokens "
        "that never expire. (To try a production build over plain HTTP locally, set SECURE_COOKIES=false.)"
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # allauth's "Sessions" page (usersessions) uses its template filters.
    "django.contrib.humanize",
    "anymail",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "subscriptions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "subscriptions.middleware.SameOriginCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # allauth's UserSessionsMiddleware is left out: it only tracks activity, which is off;
    # sessions are recorded at sign-in (so removing a member ends them) without it.
    "subscriptions.staff_auth.StaffAuthMiddleware",
]

AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", "", schemes=("postgres", "postgresql", "sqlite"), required=PRODUCTION)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "tidings.sqlite3")}}
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", "") or None}
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if not USING_POSTGRES:
    # The SQLite demo lacks NULLS NOT DISTINCT; production and tests run on PostgreSQL.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, broker, rate limits ---------------------------------------------
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss"), required=PRODUCTION)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "tidings",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -------------------------------------------------------------------------
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss", "amqp"))
# Without a broker the demo runs every task in-process, synchronously.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "transactional"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800, minimum=60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
# With acks_late, Redis re-delivers a task that is not acknowledged within the
# visibility timeout. It must exceed the longest task (the hard time limit above),
# or a slow task would run twice; tasks are idempotent, so a re-delivery after a
# worker crash is safe.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=CELERY_TASK_TIME_LIMIT + 60),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Mail ---------------------------------------------------------------------------
# MAILER picks the transport: "outbox" (the demo page /dev/outbox/), "smtp", or the
# name of any django-anymail ESP module ("amazon_ses", "mailgun", "postmark", ...).
MAILER = env_str("MAILER", "outbox" if DEBUG else "", required=PRODUCTION).lower()
if MAILER == "outbox":
    _mailer = {"BACKEND": "subscriptions.mail.outbox.OutboxBackend", "OPTIONS": {"directory": str(VAR_DIR / "outbox")}}
elif MAILER == "smtp":
    _mailer = {
        # Django's SMTP backend, with a refused recipient raised without its address (see the class).
        "BACKEND": "subscriptions.mail.smtp_backend.SmtpMailer",
        "OPTIONS": {
            "host": env_str("SMTP_HOST", required=True),
            "port": env_int("SMTP_PORT", 587, minimum=1),
            "username": env_str("SMTP_USERNAME"),
            "password": env_str("SMTP_PASSWORD"),
            "use_tls": env_bool("SMTP_USE_TLS", default=True),
            "use_ssl": env_bool("SMTP_USE_SSL", default=False),
            "timeout": env_int("SMTP_TIMEOUT", 30, minimum=1),
        },
    }
else:
    _mailer = {"BACKEND": f"anymail.backends.{MAILER}.EmailBackend"}
MAILERS = {"default": _mailer}

# django-anymail reads its ESP credentials from this dict; every ANYMAIL_* variable
# lands here without its prefix (ANYMAIL_MAILGUN_API_KEY -> MAILGUN_API_KEY), so any
# ESP can be configured without code changes. Values anymail takes as booleans, numbers
# or JSON (dicts, lists) are parsed, and a malformed one stops start-up (config/env.py).
ANYMAIL = env_anymail()
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Tidings <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Webhooks and inbound mail ----------------------------------------------------------
# Webhook events dated further than this from now are refused (a 400, logged), signed or
# not, so a captured event cannot be replayed later. It must stay below the 30 days
# event ids are kept, so that any replay inside it is a duplicate. 3 days covers the
# longest provider retry schedule (SendGrid, Postmark).
WEBHOOK_MAX_AGE_SECONDS = env_int("WEBHOOK_MAX_AGE_SECONDS", 3 * 86400, minimum=300)
if WEBHOOK_MAX_AGE_SECONDS > 29 * 86400:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("WEBHOOK_MAX_AGE_SECONDS must be at most 29 days (2505600).")
# Amazon SES reports through SNS, and any AWS account can sign an SNS message: only
# these topics' notifications are taken (comma-separated ARNs). Unset, none is.
AMAZON_SES_SNS_TOPIC_ARNS = env_list("AMAZON_SES_SNS_TOPIC_ARNS")
# The authserv-id our receiving ESP writes in its Authentication-Results header (e.g.
# "amazonses.com"); comma-separated if several. Unset, no inbound "unsubscribe me"
# email counts as authenticated, so none withdraws anyone (docs/unsubscribe.md).
INBOUND_AUTHSERV_IDS = env_list("INBOUND_AUTHSERV_ID")

# --- Staff area ----------------------------------------------------------------------
# Where campaign teams work, and where platform operators find the Django admin.
STAFF_PATH = env_str("STAFF_PATH", "staff").strip("/")
ADMIN_PATH = env_str("ADMIN_PATH", "admin").strip("/")
# When set (e.g. "staff.example.org"), the staff and admin paths answer 404 on every other host.
STAFF_HOST = env_str("STAFF_HOST", "").lower()
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "staff:home"

# --- Staff sign-in (django-allauth's account and MFA apps) ----------------------------
# Configured, not written: allauth does the passwords, codes, keys and throttling; the
# middleware in subscriptions/staff_auth.py only enforces enrolment and session limits.
ACCOUNT_ADAPTER = "subscriptions.staff_auth.StaffAccountAdapter"
ACCOUNT_FORMS = {"login": "subscriptions.staff_auth.StaffLoginForm"}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# Staff addresses come from invitations (the link proved them) or from an operator.
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
# A reset asked for an unknown address sends nothing: the page is a way to mail strangers otherwise.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
# No "remember me": the session cookie dies with the browser, and STAFF_SESSION_MAX_HOURS caps it anyway.
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_REAUTHENTICATION_TIMEOUT = env_int("STAFF_REAUTHENTICATION_SECONDS", 300, minimum=30)
# Failed sign-ins: 10 a minute per client address, 5 per 5 minutes per account (the
# adapter keys a name or address to its account; allauth applies the same limit to
# wrong codes at the second-factor step). A locked account refuses even the right
# password until the 5 minutes pass.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reauthenticate": "10/m/user",
}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Tidings: "
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
# allauth refuses a second factor to accounts with an unverified address (against
# someone signing up with another's address). There is no sign-up here, and a mere
# password-reset request records the address unverified, which would block enrolment.
MFA_ALLOW_UNVERIFIED_EMAIL = True
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Tidings")
# Browsers offer WebAuthn only over HTTPS, or on http://localhost (so the demo at
# http://localhost:8000 can add a key, and 127.0.0.1 cannot). The origin is always
# checked: allauth's MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN stays off.
MFA_PASSKEY_LOGIN_ENABLED = False
# Idle and absolute limits on a signed-in session; either one passing signs the user out.
STAFF_IDLE_TIMEOUT_MINUTES = env_int("STAFF_IDLE_TIMEOUT_MINUTES", 30, minimum=1)
STAFF_SESSION_MAX_HOURS = env_int("STAFF_SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = STAFF_SESSION_MAX_HOURS * 3600
# An invitation link to join a campaign's team works this long, once.
STAFF_INVITATION_EXPIRY_HOURS = env_int("STAFF_INVITATION_EXPIRY_HOURS", 72, minimum=1)

# --- Security -----------------------------------------------------------------------
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    # A nonce'd <style> carries the campaign's brand colour; no inline style attributes.
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
# Links carry tokens, so no page ever tells another site where it came from. Under
# no-referrer browsers post forms with `Origin: null`; SameOriginCsrfViewMiddleware
# accepts that only when Sec-Fetch-Site vouches it is our own page.
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if PRODUCTION:
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# The header a trusted reverse proxy sets to the client address, e.g.
# "X-Forwarded-For". Empty means REMOTE_ADDR is the client (no proxy trusted).
TRUSTED_PROXY_HEADER = env_str("TRUSTED_PROXY_HEADER", "")
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1, minimum=1)
if env_str("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (env_str("SECURE_PROXY_SSL_HEADER"), "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Bearer token for /healthz/ready, the detailed check (database, cache, broker). Unset:
# only DEBUG shows it. /healthz, the cheap liveness answer, needs none.
HEALTH_CHECK_TOKEN = env_str("HEALTH_CHECK_TOKEN", "")

# --- Static files -------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# GOV.UK Frontend comes from npm (`npm ci`, run by the Makefile) and is served as-is.
STATICFILES_DIRS = [BASE_DIR / "static", ("govuk", BASE_DIR / "node_modules" / "govuk-frontend" / "dist" / "govuk")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names need `collectstatic` first; the test suite and the demo skip that.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", default=PRODUCTION)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Internationalisation -----------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

# --- Sign-up abuse defences -----------------------------------------------------------
SIGNUP_LIMIT_PER_IP_PER_MINUTE = env_int("SIGNUP_LIMIT_PER_IP_PER_MINUTE", 10, minimum=1)
SIGNUP_LIMIT_PER_IP_PER_HOUR = env_int("SIGNUP_LIMIT_PER_IP_PER_HOUR", 60, minimum=1)
SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR = env_int("SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR", 5, minimum=1)
CONFIRMATION_EMAIL_WINDOW_SECONDS = env_int("CONFIRMATION_EMAIL_WINDOW_SECONDS", 300, minimum=1)
CONFIRMATION_EMAILS_PER_WEEK = env_int("CONFIRMATION_EMAILS_PER_WEEK", 5, minimum=1)
# Per campaign: a flood on one campaign never stops sign-ups on the others.
CONFIRMATION_EMAILS_PER_HOUR = env_int("CONFIRMATION_EMAILS_PER_HOUR", 5000, minimum=1)
# "Lost your link?": one email per address per window, counted apart from sign-ups.
MANAGE_LINK_WINDOW_SECONDS = env_int("MANAGE_LINK_WINDOW_SECONDS", 300, minimum=1)
SIGNUP_MIN_FILL_SECONDS = env_float("SIGNUP_MIN_FILL_SECONDS", 2.0, minimum=0)
# The rate limit a new API key gets; each key's own limit is set on the staff pages.
API_LIMIT_PER_KEY_PER_MINUTE = env_int("API_LIMIT_PER_KEY_PER_MINUTE", 600, minimum=1)
# After a key is rotated, the old one keeps working this long so its users can move over.
API_KEY_ROTATION_OVERLAP_HOURS = env_int("API_KEY_ROTATION_OVERLAP_HOURS", 24, minimum=0)
# Audit events older than this are deleted by the daily retention job, the one
# deletion the audit table's trigger allows.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 730, minimum=30)

# --- Sending ------------------------------------------------------------------------
SEND_RATE_PER_SECOND = env_float("SEND_RATE_PER_SECOND", 50.0, minimum=0.1)
SEND_BATCH_SIZE = env_int("SEND_BATCH_SIZE", 500, minimum=1)
# Tokens the shared bucket may hold: how far a burst may run ahead of the rate.
SEND_RATE_BURST = env_int("SEND_RATE_BURST", max(int(SEND_RATE_PER_SECOND), 1), minimum=1)
# Send tasks working on one mailing at once (each claims its own batches).
SEND_PARALLELISM = env_int("SEND_PARALLELISM", 2, minimum=1)
# Fan-out of a large campaign runs as this many INSERT ... SELECT statements at once,
# each over a range of subscriber ids on a database connection of its own; a campaign
# whose subscriber ids span fewer than FANOUT_PARALLEL_FROM is one statement.
FANOUT_PARALLELISM = env_int("FANOUT_PARALLELISM", 2, minimum=1)
FANOUT_PARALLEL_FROM = env_int("FANOUT_PARALLEL_FROM", 100_000, minimum=1)
# A claim older than this is presumed lost with its worker: its deliveries become
# `unknown` and are never resent automatically.
SEND_LEASE_SECONDS = env_int("SEND_LEASE_SECONDS", 900, minimum=60)
# Quick retries of one message after a 5xx or a timeout before it is marked failed.
SEND_RETRIES = env_int("SEND_RETRIES", 3, minimum=0)
# First wait before such a retry; each further retry waits twice as long.
SEND_RETRY_BACKOFF_SECONDS = env_float("SEND_RETRY_BACKOFF_SECONDS", 0.5, minimum=0)
TRACKING_ENABLED = env_bool("TRACKING_ENABLED", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Request paths carry link tokens, so every line goes through one handler that drops them.
    "filters": {"redact_tokens": {"()": "subscriptions.log_redaction.RedactTokens"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tokens"]}},
    # Django's own handlers for these (its console, runserver's, and mail_admins, which
    # mails the whole request) would bypass the filter: send them to the root instead. The
    # loggers that write paths filter too, so any handler added later gets clean records.
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.request": {"filters": ["redact_tokens"]},
        "django.server": {"handlers": [], "propagate": True, "filters": ["redact_tokens"]},
    },
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "info", choices=("debug", "info", "warning", "error")).upper(),
    },
}
