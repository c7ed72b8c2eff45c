"""Every ESP the docs name can be configured as shipped: its backend is built and its
webhook views are, so nothing the install leaves out turns up as a 500 or InvalidMailer
in production."""

import re
from pathlib import Path

import pytest
from anymail import urls as anymail_urls
from django.core.mail import mailers
from django.urls import URLPattern

ROOT = Path(__file__).resolve().parents[2]

# Each ESP named in .env.example and docs/sending.md, with the credentials its backend
# and webhooks need before they can be built (values are placeholders: nothing is sent).
DOCUMENTED = {
    "amazon_ses": {},
    "brevo": {"BREVO_API_KEY": "key"},
    "mailersend": {
        "MAILERSEND_API_TOKEN": "token",
        "MAILERSEND_SIGNING_SECRET": "secret",
        "MAILERSEND_INBOUND_SECRET": "secret",
    },
    "mailgun": {"MAILGUN_API_KEY": "key", "MAILGUN_WEBHOOK_SIGNING_KEY": "signing-key"},
    "mailjet": {"MAILJET_API_KEY": "key", "MAILJET_SECRET_KEY": "secret"},
    "mailtrap": {"MAILTRAP_API_TOKEN": "token"},
    "mandrill": {"MANDRILL_API_KEY": "key", "MANDRILL_WEBHOOK_KEY": "key"},
    "postmark": {"POSTMARK_SERVER_TOKEN": "token"},
    "resend": {"RESEND_API_KEY": "key", "RESEND_SIGNING_SECRET": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"},
    "sendgrid": {"SENDGRID_API_KEY": "key"},
    "sparkpost": {"SPARKPOST_API_KEY": "key"},
    "unisender_go": {"UNISENDER_GO_API_KEY": "key", "UNISENDER_GO_API_URL": "https://go1.unisender.ru/api/v1/"},
}


def _named_in_docs() -> set[str]:
    env = (ROOT / ".env.example").read_text()
    listed = re.search(r"django-anymail ESP: ([^(]+)", env)
    assert listed is not None
    names = {name.strip(" ,.\n#") for name in listed.group(1).replace("#", " ").split(",")}
    sending = (ROOT / "docs" / "sending.md").read_text()
    names |= set(re.findall(r"^\| `(\w+)` \|", sending, flags=re.MULTILINE))
    return {name for name in names if name and name != "..."}


def test_every_esp_the_docs_name_is_checked_here():
    assert _named_in_docs() <= set(DOCUMENTED)


@pytest.fixture
def esp_settings(settings):
    def configure(esp: str) -> None:
        settings.MAILERS = {"default": {"BACKEND": f"anymail.backends.{esp}.EmailBackend"}}
        settings.ANYMAIL = {"WEBHOOK_SECRET": "user:password", **DOCUMENTED[esp]}

    return configure


@pytest.mark.parametrize("esp", sorted(DOCUMENTED))
def test_the_esps_backend_can_be_built(esp_settings, esp):
    esp_settings(esp)
    backend = mailers["default"]
    assert type(backend).__module__ == f"anymail.backends.{esp}"


def _esp_of(pattern: URLPattern) -> str:
    return str(pattern.name).removesuffix("_webhook").removesuffix("_tracking").removesuffix("_inbound")


@pytest.mark.parametrize("esp", sorted(DOCUMENTED))
def test_the_esps_webhook_views_can_be_built(esp_settings, esp):
    esp_settings(esp)
    patterns = [pattern for pattern in anymail_urls.urlpatterns if _esp_of(pattern) == esp]
    assert patterns, f"anymail has no webhook for {esp}"
    for pattern in patterns:
        view = pattern.callback
        # What Django does on every request: a view that needs a library not installed,
        # or a setting of the wrong type, raises here (and the webhook answers 500).
        view.view_class(**view.view_initkwargs)
