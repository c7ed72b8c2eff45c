"""Merge-data batches (transports.merge) through anymail's real SparkPost backend, against SparkPost's
transmissions API on a local port."""

import dataclasses
import html
import time

import pytest

from subscriptions.mail.transports import merge
from subscriptions.models import Delivery, Mailing
from subscriptions.services.sending import reconcile
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.run import BULK_MAILER, mailing_send_batches
from subscriptions.services.sending.sweep import deliveries_sweep
from subscriptions.tokens import LinkPurpose, make_delivery_reference, make_link_token
from tests.support.fake_sparkpost import Answer
from tests.support.mailing_fixtures import delivery_statuses, mailing_transport, make_mailing

pytestmark = pytest.mark.django_db


def test_sparkpost_batches(sparkpost, mailing):
    assert isinstance(mailing_transport(mailing), merge.MergeBatchTransport)


def test_a_batch_is_one_call_with_each_persons_values_headers_and_delivery_id(sparkpost, mailing, audience):
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    [call] = sparkpost.received
    assert call.path == "/api/v1/transmissions/"
    assert sorted(call.to) == sorted(p.email for p in audience)
    assert "Person" not in call.body["content"]["text"] + call.body["content"]["html"]
    ids = dict(Delivery.objects.filter(mailing=mailing).values_list("subscriber__email", "pk"))
    messages = call.messages()
    for person in audience:
        message = messages[person.email]
        unsubscribe = f"/u/{make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=person)}/"
        manage = f"/manage/{make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)}/"
        assert message["metadata"] == {"delivery_ref": make_delivery_reference(ids[person.email])}
        assert message["headers"]["X-Tidings-Delivery"] == make_delivery_reference(ids[person.email])
        assert message["headers"]["List-Unsubscribe"].endswith(f"{unsubscribe}>")
        assert message["headers"]["Message-ID"].startswith(f"<{ids[person.email]}.")
        assert message["headers"]["Message-ID"].endswith(f"@{mailing.campaign.sender_domain}>")
        assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["subject"] == "Kent is recruiting"
        assert f"Hello {person.first_name}," in message["text"]
        assert f"Hello {person.first_name}," in message["html"]
        for part in ("text", "html"):
            assert unsubscribe in message[part]
            assert manage in message[part]
            others = [p for p in audience if p != person]
            assert not any(
                make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=p) in message[part] for p in others
            )
    # One transmission id for the whole call: stored, but it names nobody on its own,
    # so an event carrying only that id settles no one (webhooks match the delivery id).
    stored = set(Delivery.objects.filter(mailing=mailing).values_list("esp_message_id", flat=True))
    assert stored == {"transmission-1"}
    assert reconcile.delivery_reconcile(esp_message_id="transmission-1", event="bounced") is None


@pytest.mark.parametrize(
    ("subject", "body", "greeting"),
    [
        ("Kent {{ if x }} recruits {{{ now }}}", "Hi {{ first_name }}, see `a }} b` and `{}}`.", "Hi NAME,"),
        ("Use {{a}}{{b}} here {}", "Hi {{{ first_name }}}!\n\nSee https://example.org/x[[y]]", "Hi {NAME}!"),
    ],
)
def test_braces_in_the_mailings_own_text_and_in_a_name_are_shown_as_written(
    sparkpost, campaign, topics, audience, subject, body, greeting
):
    mailing = make_mailing(campaign, topics[:1], body=body)
    Mailing.objects.filter(pk=mailing.pk).update(subject=subject)
    mailing_fan_out(mailing=mailing)
    name = "{{tidings_manage_url}} & Bo's }"
    audience[2].first_name = name
    audience[2].save(update_fields=["first_name"])
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    [call] = sparkpost.received
    messages = call.messages()
    for person in audience:
        message = messages[person.email]
        assert message["subject"] == subject
        assert greeting.replace("NAME", person.first_name) in message["text"]
        in_html = html.escape(person.first_name).replace("{", "&#123;")
        assert greeting.replace("NAME", in_html) in message["html"]
        others = [p for p in audience if p != person]
        for part in ("text", "html"):
            assert not any(make_link_token(purpose=LinkPurpose.MANAGE, subscriber=p) in message[part] for p in others)


def test_braces_in_the_sender_are_shown_as_written(sparkpost, mailing):
    mailing.campaign.sender_name = "Police {{Recruitment}}"
    mailing.campaign.save(update_fields=["sender_name"])
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    for message in sparkpost.received[0].messages().values():
        assert message["from"] == "Police {{Recruitment}} <alerts@police.example.org>"


def test_a_call_sparkpost_accepts_only_in_part_leaves_everyone_unknown_and_never_resends(sparkpost, mailing):
    sparkpost.answer(Answer(accept=3))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"unknown": 5}
    deliveries_sweep()
    mailing_send_batches(mailing_id=mailing.pk)
    assert len(sparkpost.received) == 1


def test_a_sending_limit_reached_gives_the_batch_back_and_pauses_every_worker(sparkpost, mailing, redis_client):
    """SparkPost's 420: its hourly or daily quota is spent and nothing was sent."""
    sparkpost.answer(Answer(status=420))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"queued": 5}
    assert len(sparkpost.received) == 1
    paused_until = float(redis_client.hget(f"tidings:ratelimit:{BULK_MAILER}", "paused_until"))
    assert paused_until > time.time() + 500


def test_a_429_sends_the_same_batch_again(sparkpost, mailing, audience):
    sparkpost.answer(Answer(status=429))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    first, second = sparkpost.received
    assert sorted(first.to) == sorted(second.to) == sorted(p.email for p in audience)


def test_a_call_rejected_for_its_one_recipient_fails_that_person(sparkpost, mailing, audience, monkeypatch):
    one_each = dataclasses.replace(merge.BATCHING["SparkPost"], max_recipients=1)
    monkeypatch.setitem(merge.BATCHING, "SparkPost", one_each)
    sparkpost.answer(Answer(accept=0))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 1, "sent": 4}
    assert list(delivery_statuses(mailing).values()).count("failed") == 1
