"""Merge-data batches (transports.merge) through anymail's real Mailgun backend, against Mailgun's API on a
local port."""

import html
import json
import time

import pytest
from anymail.backends.mailgun import EmailBackend as MailgunBackend
from anymail.message import AnymailRecipientStatus

from subscriptions.mail.transports import merge
from subscriptions.models import Delivery, Subscriber
from subscriptions.services.sending.batch import MIN_RATE_LIMIT_WAIT
from subscriptions.services.sending.ratelimit import ratelimit_try_take
from subscriptions.services.sending.run import BULK_MAILER, mailing_send_batches
from subscriptions.services.sending.sweep import deliveries_sweep
from subscriptions.tokens import LinkPurpose, make_delivery_reference, make_link_token
from tests.support.fake_mailgun import Answer
from tests.support.mailing_fixtures import delivery_statuses

pytestmark = pytest.mark.django_db


def delivery_ids(mailing):
    return dict(Delivery.objects.filter(mailing=mailing).values_list("subscriber__email", "pk"))


def test_a_batch_is_one_post_with_each_persons_values_headers_and_delivery_id(mailgun, mailing, audience):
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    [post] = mailgun.received
    assert post.path == "/v3/police.example.org/messages"
    assert sorted(post.to) == sorted(p.email for p in audience)
    assert post.fields["h:List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
    assert post.fields["v:delivery_ref"] == ["%recipient.v:delivery_ref%"]
    # The body went once, with merge fields where people's values go.
    assert "Person" not in post.fields["text"][0] + post.fields["html"][0]
    assert "%recipient.tidings_unsubscribe_url%" in post.fields["html"][0]
    ids = delivery_ids(mailing)
    messages = post.messages()
    message_ids = set()
    for person in audience:
        message = messages[person.email]
        unsubscribe = f"/u/{make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=person)}/"
        manage = f"/manage/{make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)}/"
        assert message["v:delivery_ref"] == make_delivery_reference(ids[person.email])
        assert message["h:X-Tidings-Delivery"] == make_delivery_reference(ids[person.email])
        assert message["h:List-Unsubscribe"].endswith(f"{unsubscribe}>")
        assert f"Hello {person.first_name}," in message["text"]
        assert f"Hello {person.first_name}," in message["html"]
        for part in ("text", "html"):
            assert unsubscribe in message[part]
            assert manage in message[part]
            others = [p for p in audience if p != person]
            assert not any(
                make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=p) in message[part] for p in others
            )
        message_ids.add(message["h:Message-Id"])
    assert len(message_ids) == 5
    # Stored as webhooks are matched: without angle brackets.
    assert set(Delivery.objects.filter(mailing=mailing).values_list("esp_message_id", flat=True)) == {
        "batch1@mailgun.test"
    }


def test_a_first_name_in_merge_syntax_or_markup_is_shown_as_written(mailgun, mailing, audience):
    name = "%recipient.tidings_unsubscribe_url% <b>Bo</b> & %recipient.v:delivery_id%"
    audience[2].first_name = name
    audience[2].save(update_fields=["first_name"])
    mailing_send_batches(mailing_id=mailing.pk)
    message = mailgun.received[0].messages()[audience[2].email]
    assert f"Hello {name}," in message["text"]
    assert f"Hello {html.escape(name).replace('%', '&#37;')}," in message["html"]
    assert "<b>Bo</b>" not in message["html"]
    # The fake substitutes in one pass, as Mailgun is understood to; the HTML copy does
    # not depend on it, since no "%" of a name reaches Mailgun there.
    values = json.loads(mailgun.received[0].fields["recipient-variables"][0])[audience[2].email]
    html_values = [value for key, value in values.items() if key.endswith("_html")]
    assert html_values
    assert not any("%" in value for value in html_values)


def test_each_call_carries_at_most_the_esps_cap_and_takes_one_slot_per_person(
    mailgun, mailing, audience, monkeypatch, settings
):
    monkeypatch.setitem(merge.BATCHING, "Mailgun", merge.EspBatching(("%recipient.", "%"), max_recipients=2))
    settings.SEND_RATE_PER_SECOND = 0.1
    settings.SEND_RATE_BURST = 5
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert [len(post.to) for post in mailgun.received] == [2, 2, 1]
    assert ratelimit_try_take(mailer=BULK_MAILER, count=1).granted == 0


def test_a_429_waits_as_told_then_sends_the_same_batch(mailgun, mailing, audience, redis_client):
    mailgun.answer(Answer(status=429, retry_after="1"))
    started = time.monotonic()
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert time.monotonic() - started >= 1.0
    first, second = mailgun.received
    assert sorted(first.to) == sorted(second.to) == sorted(p.email for p in audience)
    assert float(redis_client.hget(f"tidings:ratelimit:{BULK_MAILER}", "paused_until")) > 0


def test_a_500_is_retried_then_sent(mailgun, mailing):
    mailgun.answer(Answer(status=500))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert len(mailgun.received) == 2


def test_a_500_beyond_the_retry_limit_goes_on_one_person_per_call(mailgun, mailing, settings):
    settings.SEND_RETRIES = 1
    mailgun.answer(*[Answer(status=500)] * 2)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert [len(post.to) for post in mailgun.received] == [5, 5, 1, 1, 1, 1, 1]


def test_an_esp_that_stays_down_fails_two_people_and_gives_the_rest_back(mailgun, mailing, settings):
    settings.SEND_RETRIES = 1
    mailgun.answer(*[Answer(status=500)] * 6)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 2, "queued": 3}
    assert [len(post.to) for post in mailgun.received] == [5, 5, 1, 1, 1, 1]
    errors = Delivery.objects.filter(mailing=mailing, status="failed").values_list("error", flat=True)
    assert all("500" in error for error in errors)


def test_a_garbled_answer_to_a_call_leaves_everyone_unknown_and_never_resends(mailgun, mailing):
    mailgun.answer(Answer(garbled=True))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"unknown": 5}
    assert len(mailgun.received) == 1


@pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_429_that_asks_for_no_wait_still_waits_a_second(mailgun, mailing, retry_after):
    mailgun.answer(Answer(status=429, retry_after=retry_after))
    started = time.monotonic()
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert time.monotonic() - started >= MIN_RATE_LIMIT_WAIT
    assert len(mailgun.received) == 2


def test_a_429_longer_than_a_lease_allows_gives_the_batch_back_and_pauses_every_worker(
    mailgun, mailing, settings, redis_client
):
    mailgun.answer(Answer(status=429, retry_after="3600"))
    started = time.monotonic()
    assert mailing_send_batches(mailing_id=mailing.pk) == {"queued": 5}
    assert time.monotonic() - started < 5
    assert len(mailgun.received) == 1
    paused_until = float(redis_client.hget(f"tidings:ratelimit:{BULK_MAILER}", "paused_until"))
    assert paused_until > time.time() + 3000


def test_a_connection_reset_after_sending_leaves_everyone_unknown_and_never_resends(mailgun, mailing):
    mailgun.answer(Answer(reset=True))
    assert mailing_send_batches(mailing_id=mailing.pk) == {"unknown": 5}
    deliveries_sweep()
    mailing_send_batches(mailing_id=mailing.pk)
    assert len(mailgun.received) == 1


def test_a_call_refused_for_one_address_fails_only_that_person(mailgun, mailing, audience):
    mailgun.answer(*[Answer(refuse=audience[3].email)] * 6)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 1, "sent": 4}
    assert delivery_statuses(mailing)[audience[3].email] == "failed"
    # The batch, then one call per person to find whom the refusal concerned.
    assert [len(post.to) for post in mailgun.received] == [5, 1, 1, 1, 1, 1]


class RejectingMailgunBackend(MailgunBackend):
    """Mailgun, answering as ESPs with per-recipient status do (Mandrill, SparkPost): one address rejected."""

    rejected = ""

    def parse_recipient_status(self, response, payload, message):
        statuses = super().parse_recipient_status(response, payload, message)
        for address, status in statuses.items():
            if address == self.rejected:
                statuses[address] = AnymailRecipientStatus(message_id=status.message_id, status="rejected")
        return statuses


def test_a_recipient_the_esp_rejects_is_failed_and_the_rest_are_sent(mailgun, mailing, audience, settings, monkeypatch):
    settings.MAILERS["default"]["BACKEND"] = f"{__name__}.RejectingMailgunBackend"
    monkeypatch.setattr(RejectingMailgunBackend, "rejected", audience[1].email)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 1, "sent": 4}
    assert delivery_statuses(mailing)[audience[1].email] == "failed"
    assert len(mailgun.received) == 1


def test_two_people_whose_addresses_meet_on_the_wire_are_sent_apart(mailgun, mailing, audience):
    """An IDN domain and its punycode are one envelope address: merge data keyed by it would mix them up."""
    Subscriber.objects.filter(pk=audience[0].pk).update(email="kim@bücher.example")
    Subscriber.objects.filter(pk=audience[1].pk).update(email="kim@xn--bcher-kva.example")
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert [len(post.to) for post in mailgun.received] == [1, 1, 1, 1, 1]
    ids = delivery_ids(mailing)
    sent_ids = [post.messages()[post.to[0]]["v:delivery_ref"] for post in mailgun.received]
    assert sorted(sent_ids) == sorted(make_delivery_reference(i) for i in ids.values())
