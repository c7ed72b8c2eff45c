"""The sign-up intake: accepted in the request, recorded by a drain, at least once and
idempotently, with nothing of the person left in Redis afterwards."""

import datetime

import pytest
from django.core import mail
from django.db import OperationalError
from django.utils import timezone

from subscriptions import abuse, intake
from subscriptions.models import Campaign, ConsentEvent, Subscriber
from subscriptions.services import signup_intake
from subscriptions.services.signup import SignupEntry, signup_request
from tests.factories import SignupFormFactory, TopicFactory
from tests.nothing_left import traces_of
from tests.signup_helpers import aged_stamp


@pytest.fixture
def signup_form(db):
    general = TopicFactory(slug="general", name="General updates")
    return SignupFormFactory(campaign=general.campaign, topics=[general])


@pytest.fixture
def drains_asked(monkeypatch):
    """Sign-ups append to the stream but the drain they ask for is only counted, so a
    test can look at the stream before it is recorded."""
    asked: list[None] = []
    monkeypatch.setattr("subscriptions.services.signup._queue_drain", lambda: asked.append(None))
    return asked


def _accept(form, email="river@example.com", first_name="River", client_ip="192.0.2.7"):
    signup_request(
        form=form,
        email=email,
        first_name=first_name,
        topics=list(form.topics.all()),
        attributes={},
        source=ConsentEvent.Source.PAGE,
        client_ip=client_ip,
    )


def _entry(form, email="river@example.com", **changes):
    values = {
        "form_id": form.pk,
        "privacy_notice_id": None,
        "email": email,
        "first_name": "River",
        "topic_ids": list(form.topics.values_list("pk", flat=True)),
        "attributes": {},
        "source": ConsentEvent.Source.PAGE,
        "requested_at": timezone.now(),
    }
    return SignupEntry(**{**values, **changes})


def _append(entry_or_payload) -> None:
    payload = entry_or_payload if isinstance(entry_or_payload, str) else entry_or_payload.dumps()
    abuse.admit([], append=intake.append_for(payload))


def test_a_posted_sign_up_waits_in_the_stream_until_a_drain_records_it(
    client, signup_form, drains_asked, django_capture_on_commit_callbacks
):
    path = f"/c/{signup_form.campaign.slug}/{signup_form.slug}/"
    response = client.post(
        path, {"email": "river@example.com", "first_name": "River", "consent": "on", "stamp": aged_stamp()}
    )

    assert response.status_code == 302
    assert not Subscriber.objects.exists(), "the request itself writes nothing to PostgreSQL"
    assert intake.backlog() == 1
    assert len(drains_asked) == 1

    with django_capture_on_commit_callbacks(execute=True):
        outcome = signup_intake.signups_drain()

    assert outcome.recorded == 1
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.consent_events.get().kind == ConsentEvent.Kind.REQUESTED
    assert [m.to for m in mail.outbox] == [["river@example.com"]]
    assert intake.backlog() == 0


def test_only_a_sign_up_that_finds_no_drain_on_its_way_asks_for_one(signup_form, drains_asked):
    for number in range(3):
        _accept(signup_form, email=f"person{number}@example.com")
    assert len(drains_asked) == 1

    signup_intake.signups_drain()  # empties the stream, so the flag goes with it
    _accept(signup_form, email="later@example.com")

    assert len(drains_asked) == 2
    assert Subscriber.objects.count() == 3


def test_the_request_is_dated_when_it_came_in_not_when_it_was_recorded(signup_form):
    asked_at = timezone.now() - datetime.timedelta(minutes=3)
    _append(_entry(signup_form, requested_at=asked_at))

    signup_intake.signups_drain()

    assert ConsentEvent.objects.get().created_at == asked_at


def test_an_entry_recorded_but_not_deleted_is_recorded_once(
    signup_form, monkeypatch, django_capture_on_commit_callbacks
):
    _append(_entry(signup_form))
    # A drain reads and records the entry, then dies before deleting it from the stream.
    [(entry_id, payload)] = intake.read(consumer="died", count=10)
    monkeypatch.setattr(intake, "STALE_MS", 0)

    with django_capture_on_commit_callbacks(execute=True):
        signup_intake.signup_record(SignupEntry.loads(payload), form=signup_form, intake_id=entry_id)
        outcome = signup_intake.signups_drain()

    assert (outcome.recorded, outcome.skipped) == (0, 1)
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.REQUESTED).count() == 1
    assert len(mail.outbox) == 1
    assert intake.backlog() == 0


def test_an_entry_held_by_a_live_reader_is_left_to_it(signup_form):
    _append(_entry(signup_form))
    intake.read(consumer="busy", count=10)  # in another drain's hands, not yet stale

    outcome = signup_intake.signups_drain()

    assert outcome.recorded == 0
    assert intake.backlog() == 1
    assert intake.redis_client().exists(intake.DRAIN_FLAG), "the flag stays until the stream is empty"


def test_a_sign_up_for_a_campaign_that_ended_meanwhile_is_not_recorded(signup_form, drains_asked):
    _accept(signup_form)
    Campaign.objects.filter(pk=signup_form.campaign_id).update(status=Campaign.Status.ENDED)

    outcome = signup_intake.signups_drain()

    assert outcome.skipped == 1
    assert not Subscriber.objects.exists()
    assert intake.backlog() == 0
    assert mail.outbox == []


def test_a_database_outage_leaves_the_entry_for_a_later_drain(signup_form, drains_asked, monkeypatch):
    _accept(signup_form)

    def outage(*args, **kwargs):
        raise OperationalError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(signup_intake, "signup_record", outage)
        with pytest.raises(OperationalError):
            signup_intake.signups_drain()
    assert intake.backlog() == 1

    monkeypatch.setattr(intake, "STALE_MS", 0)  # the failed drain's hold has expired
    outcome = signup_intake.signups_drain()

    assert outcome.recorded == 1
    assert Subscriber.objects.count() == 1
    assert intake.backlog() == 0


def test_an_unreadable_entry_is_dropped_without_holding_up_the_rest(signup_form, caplog):
    _append('{"written by": "another version"}')
    _append(_entry(signup_form))

    outcome = signup_intake.signups_drain()

    assert (outcome.dropped, outcome.recorded) == (1, 1)
    assert Subscriber.objects.count() == 1
    assert intake.backlog() == 0
    assert "another version" not in caplog.text, "an entry's content is never logged"


def test_a_refused_request_appends_nothing(signup_form, drains_asked):
    _accept(signup_form)
    with pytest.raises(abuse.RateLimited):
        _accept(signup_form)  # one confirmation email per address per window

    assert intake.backlog() == 1
    assert len(drains_asked) == 1


def test_nothing_of_the_person_stays_in_redis_once_recorded(signup_form, drains_asked, redis_client):
    for number in range(150):  # more than one stream node's worth of entries
        _accept(signup_form, email=f"river.{number}@example.com", first_name="Riverbank", client_ip=None)

    signup_intake.signups_drain()

    assert Subscriber.objects.count() == 150
    traces = traces_of("river.0@example.com", "river.149@example.com", "Riverbank")
    assert [trace for trace in traces if trace.where.startswith("redis:")] == []
    # Deleted entries are gone from Redis's own serialisation too, not just hidden.
    dump = redis_client.dump(intake.STREAM) or b""
    assert b"Riverbank" not in dump
    assert b"@example.com" not in dump


def test_without_redis_a_sign_up_is_recorded_in_its_request(signup_form, settings, drains_asked):
    settings.REDIS_URL = ""  # the SQLite demo

    _accept(signup_form)

    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert drains_asked == []
