"""Which transport a mailer gets: batches where the ESP can keep Tidings' promises, else one call per person."""

import pytest
from django.core.mail import mailers

from subscriptions.mail.letter import Letter
from subscriptions.mail.render import mailing_compile
from subscriptions.mail.transports import merge
from subscriptions.mail.transports.anymail import MessageTransport
from subscriptions.mail.transports.choose import transport_for
from tests.support.mailing_fixtures import mailing_transport

pytestmark = pytest.mark.django_db


def test_mailgun_batches_and_other_esps_keep_one_call_per_person(mailgun, mailing, settings):
    letter = Letter(compiled=mailing_compile(mailing=mailing), campaign=mailing.campaign)
    assert isinstance(transport_for(alias="default", letter=letter), merge.MergeBatchTransport)
    settings.MAILERS = {
        "default": {"BACKEND": "anymail.backends.postmark.EmailBackend", "OPTIONS": {"server_token": "t"}}
    }
    assert isinstance(transport_for(alias="default", letter=letter), MessageTransport)
    settings.MAILERS = {"default": {"BACKEND": "tests.support.fake_esp.FakeEspBackend"}}
    assert isinstance(transport_for(alias="default", letter=letter), MessageTransport)
    assert merge.batching_for(mailers["default"]) is None


@pytest.mark.parametrize(
    ("backend", "options"),
    [
        ("brevo", {"api_key": "k"}),
        ("mailtrap", {"api_token": "t"}),
        ("unisender_go", {"api_key": "k", "api_url": "https://go1.unisender.ru/ru/transactional/api/v1/"}),
        ("resend", {"api_key": "k"}),
        ("mailersend", {"api_token": "t"}),
        ("mandrill", {"api_key": "k"}),
    ],
)
def test_esps_whose_batch_sending_cannot_keep_tidings_promises_get_one_call_per_person(
    mailing, settings, backend, options
):
    """The reasons, per ESP, are in docs/adr/0009-esp-batch-sending.md."""
    settings.MAILERS = {"default": {"BACKEND": f"anymail.backends.{backend}.EmailBackend", "OPTIONS": options}}
    assert type(mailing_transport(mailing)) is MessageTransport
