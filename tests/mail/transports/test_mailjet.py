"""Many whole messages in one call through anymail's real Mailjet backend, against Mailjet's Send API v3.1 on a local
port."""

import json

import pytest

from subscriptions.mail.transports.mailjet import MESSAGES_PER_CALL, MailjetBatchTransport
from subscriptions.models import Delivery
from subscriptions.services.sending.run import mailing_send_batches
from subscriptions.tokens import LinkPurpose, make_delivery_reference, make_link_token
from tests.support.fake_mailjet import Answer, mailjet_server
from tests.support.mailing_fixtures import delivery_statuses, mailing_transport, sending_through

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailjet(settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "mj-key", "secret_key": "mj-secret", "api_url": f"http://127.0.0.1:{port}/v3.1/"}

    with sending_through(settings, mailjet_server(), "anymail.backends.mailjet.EmailBackend", options) as fake:
        yield fake


def test_mailjet_carries_many_messages_per_call(mailjet, mailing):
    transport = mailing_transport(mailing)
    assert isinstance(transport, MailjetBatchTransport)
    assert transport.max_recipients == 50


def test_a_batch_is_one_call_of_whole_messages_each_with_its_persons_links_headers_and_delivery_id(
    mailjet, mailing, audience
):
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    [call] = mailjet.received
    assert call.path == "/v3.1/send"
    assert sorted(call.to) == sorted(p.email for p in audience)
    assert call.body["Globals"]["Subject"] == "Kent is recruiting"
    # Nothing for a message of its own sits in Globals, to be mixed with it.
    assert not {"TextPart", "HTMLPart", "Headers", "EventPayload"} & set(call.body["Globals"])
    ids = dict(Delivery.objects.filter(mailing=mailing).values_list("subscriber__email", "pk"))
    messages = call.messages()
    for person in audience:
        message = messages[person.email]
        unsubscribe = f"/u/{make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=person)}/"
        assert json.loads(message["EventPayload"]) == {"delivery_ref": make_delivery_reference(ids[person.email])}
        assert message["Headers"]["X-Tidings-Delivery"] == make_delivery_reference(ids[person.email])
        assert message["Headers"]["List-Unsubscribe"].endswith(f"{unsubscribe}>")
        assert message["Headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Headers"]["Message-ID"].endswith(f"@{mailing.campaign.sender_domain}>")
        assert f"Hello {person.first_name}," in message["TextPart"]
        assert f"Hello {person.first_name}," in message["HTMLPart"]
        assert unsubscribe in message["TextPart"]
        assert unsubscribe in message["HTMLPart"]
    # Each message's own MessageID is stored.
    stored = Delivery.objects.filter(mailing=mailing).values_list("esp_message_id", flat=True)
    assert sorted(stored) == [str(1000 + index) for index in range(5)]


def test_each_call_carries_at_most_the_esps_cap(mailjet, mailing, monkeypatch):
    monkeypatch.setitem(MESSAGES_PER_CALL, "Mailjet", 2)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert [len(call.to) for call in mailjet.received] == [2, 2, 1]


def test_a_message_mailjet_refuses_fails_only_its_person(mailjet, mailing, audience):
    mailjet.answer(Answer(refuse=audience[3].email))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 1, "sent": 4}
    assert delivery_statuses(mailing)[audience[3].email] == "failed"
    assert len(mailjet.received) == 1


def test_a_429_sends_the_same_batch_again(mailjet, mailing, audience):
    mailjet.answer(Answer(status=429))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    first, second = mailjet.received
    assert sorted(first.to) == sorted(second.to) == sorted(p.email for p in audience)


def test_a_500_is_retried_then_sent(mailjet, mailing):
    mailjet.answer(Answer(status=500))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert [len(call.to) for call in mailjet.received] == [5, 5]


def test_an_address_mailjet_echoes_in_another_case_is_sent_not_failed(mailjet, mailing, audience):
    person = audience[1]
    person.email = "Mixed.Case@example.org"
    person.save(update_fields=["email"])
    mailjet.answer(Answer(lower=True))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    # Mailjet's own MessageID, as for everyone else: matched across the case.
    assert Delivery.objects.get(mailing=mailing, subscriber=person).esp_message_id.isdigit()
