"""Merge-data batches (transports.merge) through anymail's real SendGrid backend, against SendGrid's v3 API on a
local port."""

import html
import time

import pytest

from subscriptions.mail.transports import merge
from subscriptions.models import Delivery
from subscriptions.services.sending.run import mailing_send_batches
from subscriptions.services.sending.sweep import deliveries_sweep
from subscriptions.tokens import LinkPurpose, make_delivery_reference, make_link_token
from tests.support.fake_sendgrid import Answer, sendgrid_server
from tests.support.mailing_fixtures import delivery_statuses, mailing_transport, sending_through

pytestmark = pytest.mark.django_db


@pytest.fixture
def sendgrid(settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "SG.test", "api_url": f"http://127.0.0.1:{port}/v3/"}

    with sending_through(settings, sendgrid_server(), "anymail.backends.sendgrid.EmailBackend", options) as fake:
        yield fake


def test_sendgrid_batches(sendgrid, mailing):
    assert isinstance(mailing_transport(mailing), merge.MergeBatchTransport)


def test_a_batch_is_one_call_with_each_persons_values_headers_and_delivery_id(sendgrid, mailing, audience):
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    [call] = sendgrid.received
    assert call.path == "/v3/mail/send"
    assert sorted(call.to) == sorted(p.email for p in audience)
    assert call.body["headers"] == {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    # The body went once, with merge fields where people's values go.
    parts = {part["type"]: part["value"] for part in call.body["content"]}
    assert "Person" not in parts["text/plain"] + parts["text/html"]
    assert "-tidings_unsubscribe_url-" in parts["text/html"]
    ids = dict(Delivery.objects.filter(mailing=mailing).values_list("subscriber__email", "pk"))
    messages = call.messages()
    for person in audience:
        message = messages[person.email]
        unsubscribe = f"/u/{make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=person)}/"
        manage = f"/manage/{make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)}/"
        assert message["custom_args"]["delivery_ref"] == make_delivery_reference(ids[person.email])
        assert message["headers"]["X-Tidings-Delivery"] == make_delivery_reference(ids[person.email])
        assert message["headers"]["List-Unsubscribe"].endswith(f"{unsubscribe}>")
        assert message["headers"]["Message-ID"].startswith("<")
        assert f"Hello {person.first_name}," in message["text"]
        assert f"Hello {person.first_name}," in message["html"]
        for part in ("text", "html"):
            assert unsubscribe in message[part]
            assert manage in message[part]
            others = [p for p in audience if p != person]
            assert not any(
                make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=p) in message[part] for p in others
            )
    # SendGrid's one X-Message-Id covers the call; anymail gives each person an id of
    # their own (custom_args.anymail_id, echoed by webhooks), and that is what is stored.
    stored = dict(Delivery.objects.filter(mailing=mailing).values_list("subscriber__email", "esp_message_id"))
    assert stored == {address: message["custom_args"]["anymail_id"] for address, message in messages.items()}
    assert len(set(stored.values())) == 5


@pytest.mark.parametrize("passes", [1, 3])
def test_a_first_name_in_merge_syntax_or_markup_is_shown_as_written_and_shows_nobody_else(
    sendgrid, mailing, audience, passes
):
    """SendGrid does not say whether it substitutes in one pass: under either reading a
    name stays text in HTML, and a person's values are only ever their own."""
    name = "-tidings_manage_url- & Bo's"
    audience[2].first_name = name
    audience[2].save(update_fields=["first_name"])
    mailing_send_batches(mailing_id=mailing.pk)
    messages = sendgrid.received[0].messages(passes=passes)
    message = messages[audience[2].email]
    assert f"Hello {html.escape(name).replace('-', '&#45;')}," in message["html"]
    if passes == 1:
        assert f"Hello {name}," in message["text"]
    for address, message in messages.items():
        others = [p for p in audience if p.email != address]
        for part in ("text", "html"):
            assert not any(make_link_token(purpose=LinkPurpose.MANAGE, subscriber=p) in message[part] for p in others)


def test_each_call_carries_at_most_the_esps_cap(sendgrid, mailing, monkeypatch):
    monkeypatch.setitem(merge.BATCHING, "SendGrid", merge.EspBatching(("-", "-"), 2, names_fields=True))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert [len(call.to) for call in sendgrid.received] == [2, 2, 1]


def test_a_429_waits_until_the_rate_limit_resets_then_sends_the_same_batch(sendgrid, mailing, audience):
    sendgrid.answer(Answer(status=429, reset_in=4))  # a whole second: 3 to 4 s from now
    started = time.monotonic()
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert time.monotonic() - started >= 2.5  # longer than the default wait of a second
    first, second = sendgrid.received
    assert sorted(first.to) == sorted(second.to) == sorted(p.email for p in audience)


def test_a_call_refused_for_one_address_fails_only_that_person(sendgrid, mailing, audience):
    sendgrid.answer(*[Answer(refuse=audience[3].email)] * 6)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 1, "sent": 4}
    assert delivery_statuses(mailing)[audience[3].email] == "failed"
    assert [len(call.to) for call in sendgrid.received] == [5, 1, 1, 1, 1, 1]


def test_a_connection_dropped_after_sending_leaves_everyone_unknown_and_never_resends(sendgrid, mailing):
    sendgrid.answer(Answer(drop=True))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"unknown": 5}
    deliveries_sweep()
    mailing_send_batches(mailing_id=mailing.pk)
    assert len(sendgrid.received) == 1
