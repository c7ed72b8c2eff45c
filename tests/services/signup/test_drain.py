"""The drain: it records what the intake holds, at least once and idempotently, and
leaves nothing of the person in Redis afterwards."""

import datetime

import pytest
from django.core import mail
from django.db import OperationalError
from django.utils import timezone

from subscriptions.models import Campaign, ConsentEvent, DailyStat, Subscriber
from subscriptions.services.signup import drain, stream
from subscriptions.services.signup.entry import SignupEntry
from tests.services.signup.intake import accept, entry_append, entry_make
from tests.support.factories import SignupFormFactory, TopicFactory
from tests.support.nothing_left import traces_of
from tests.support.signup import aged_stamp


@pytest.fixture
def signup_form(db):
    general = TopicFactory(slug="general", name="General updates")
    return SignupFormFactory(campaign=general.campaign, topics=[general])


def test_a_posted_sign_up_waits_in_the_stream_until_a_drain_records_it(
    client, signup_form, drains_asked, django_capture_on_commit_callbacks
):
    path = f"/c/{signup_form.campaign.slug}/{signup_form.slug}/"
    response = client.post(
        path, {"email": "river@example.com", "first_name": "River", "consent": "on", "stamp": aged_stamp()}
    )

    assert response.status_code == 302
    assert not Subscriber.objects.exists(), "the request itself writes nothing to PostgreSQL"
    assert stream.backlog() == 1
    assert len(drains_asked) == 1

    with django_capture_on_commit_callbacks(execute=True):
        outcome = drain.signups_drain()

    assert outcome.recorded == 1
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.consent_events.get().kind == ConsentEvent.Kind.REQUESTED
    assert [m.to for m in mail.outbox] == [["river@example.com"]]
    assert stream.backlog() == 0


def test_the_request_is_dated_when_it_came_in_not_when_it_was_recorded(signup_form):
    asked_at = timezone.now() - datetime.timedelta(minutes=3)
    entry_append(entry_make(signup_form, requested_at=asked_at))

    drain.signups_drain()

    assert ConsentEvent.objects.get().created_at == asked_at


def test_an_entry_recorded_but_not_deleted_is_recorded_once(
    signup_form, monkeypatch, django_capture_on_commit_callbacks
):
    entry_append(entry_make(signup_form))
    # A drain reads and records the entry, then dies before deleting it from the stream.
    [(entry_id, payload)] = stream.read(consumer="died", count=10)
    monkeypatch.setattr(stream, "STALE_MS", 0)

    with django_capture_on_commit_callbacks(execute=True):
        drain.signup_record(SignupEntry.loads(stream.unseal(payload)), form=signup_form, intake_id=entry_id)
        outcome = drain.signups_drain()

    assert (outcome.recorded, outcome.skipped) == (0, 1)
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.REQUESTED).count() == 1
    assert len(mail.outbox) == 1
    assert stream.backlog() == 0


def test_an_entry_held_by_a_live_reader_is_left_to_it(signup_form):
    entry_append(entry_make(signup_form))
    stream.read(consumer="busy", count=10)  # in another drain's hands, not yet stale

    outcome = drain.signups_drain()

    assert outcome.recorded == 0
    assert stream.backlog() == 1
    assert stream.redis_client().exists(stream.DRAIN_FLAG), "the flag stays until the stream is empty"


def test_a_sign_up_for_a_campaign_that_ended_meanwhile_is_not_recorded(signup_form, drains_asked):
    accept(signup_form)
    Campaign.objects.filter(pk=signup_form.campaign_id).update(status=Campaign.Status.ENDED)

    outcome = drain.signups_drain()

    assert outcome.skipped == 1
    assert not Subscriber.objects.exists()
    assert stream.backlog() == 0
    assert mail.outbox == []


def test_a_database_outage_leaves_the_entry_for_a_later_drain(signup_form, drains_asked, monkeypatch):
    accept(signup_form)

    def outage(*args, **kwargs):
        raise OperationalError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(drain, "signup_record", outage)
        with pytest.raises(OperationalError):
            drain.signups_drain()
    assert stream.backlog() == 1

    monkeypatch.setattr(stream, "STALE_MS", 0)  # the failed drain's hold has expired
    outcome = drain.signups_drain()

    assert outcome.recorded == 1
    assert Subscriber.objects.count() == 1
    assert stream.backlog() == 0


def test_an_unreadable_entry_is_dropped_without_holding_up_the_rest(signup_form, caplog):
    entry_append('{"written by": "another version"}')
    entry_append(entry_make(signup_form))

    outcome = drain.signups_drain()

    assert (outcome.dropped, outcome.recorded) == (1, 1)
    assert Subscriber.objects.count() == 1
    assert stream.backlog() == 0
    assert "another version" not in caplog.text, "an entry's content is never logged"


def test_nothing_of_the_person_is_left_in_redis_once_recorded(signup_form, drains_asked, redis_client):
    for number in range(150):  # more than one stream node's worth of entries
        accept(signup_form, email=f"river.{number}@example.com", first_name="Riverbank", client_ip=None)

    drain.signups_drain()

    assert Subscriber.objects.count() == 150
    assert stream.backlog() == 0
    traces = traces_of("river.0@example.com", "river.149@example.com", "Riverbank")
    assert [trace for trace in traces if trace.where.startswith("redis:")] == []


def test_entries_that_cannot_be_read_are_dropped(signup_form, redis_client, caplog):
    stream.read(consumer="setup", count=1)  # creates the group
    redis_client.xadd(stream.STREAM, {stream.FIELD: "not sealed at all"})
    redis_client.xadd(stream.STREAM, {"some other field": "x"})
    entry_append(entry_make(signup_form))

    outcome = drain.signups_drain()

    assert (outcome.dropped, outcome.recorded) == (2, 1)
    assert stream.backlog() == 0


def test_an_entry_appended_while_the_drain_finds_the_stream_empty_is_not_stranded(signup_form, monkeypatch):
    real_read = stream.read
    appended = []

    def read_then_a_sign_up_arrives(**kwargs):
        entries = real_read(**kwargs)
        if not entries and not appended:
            # After the drain's empty read and before its release: the flag still stands,
            # so this append asks for no drain of its own.
            assert stream.append(entry_make(signup_form).dumps(), checks=[]) is False
            appended.append(True)
        return entries

    monkeypatch.setattr(stream, "read", read_then_a_sign_up_arrives)
    stream.hold()

    outcome = drain.signups_drain()

    assert outcome.recorded == 1
    assert stream.backlog() == 0
    assert not stream.redis_client().exists(stream.DRAIN_FLAG)


def test_a_drain_keeps_the_flag_up_while_it_works(signup_form, monkeypatch):
    entry_append(entry_make(signup_form))
    stream.redis_client().set(stream.DRAIN_FLAG, "1", ex=1)
    ttls = []
    real_record = drain.signup_record

    def record(*args, **kwargs):
        ttls.append(stream.redis_client().ttl(stream.DRAIN_FLAG))
        return real_record(*args, **kwargs)

    monkeypatch.setattr(drain, "signup_record", record)
    drain.signups_drain()

    assert ttls, "the entry was recorded"
    assert ttls[0] > 1, "the drain renewed the flag before recording"


def test_an_entry_that_fails_for_its_own_reasons_is_dropped_not_retried_forever(signup_form, monkeypatch, caplog):
    for email in ["first@example.com", "broken@example.com", "third@example.com"]:
        entry_append(entry_make(signup_form, email=email))
    real_record = drain.signup_record

    def record(entry, **kwargs):
        if entry.email == "broken@example.com":
            raise RuntimeError("a bug that only this entry meets")
        return real_record(entry, **kwargs)

    monkeypatch.setattr(drain, "signup_record", record)
    outcome = drain.signups_drain()

    assert (outcome.recorded, outcome.dropped) == (2, 1)
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == ["first@example.com", "third@example.com"]
    assert stream.backlog() == 0
    assert "broken@example.com" not in caplog.text


def test_a_retried_drain_reads_again_what_its_failed_run_left(signup_form, monkeypatch):
    entry_append(entry_make(signup_form))

    def outage(*args, **kwargs):
        raise OperationalError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(drain, "signup_record", outage)
        with pytest.raises(OperationalError):
            drain.signups_drain(reader="drain-task-1")

    outcome = drain.signups_drain(reader="drain-task-1")  # the retry: same task id, nothing stale yet

    assert outcome.recorded == 1
    assert stream.backlog() == 0


def test_a_confirmation_whose_queueing_failed_is_queued_again_on_redelivery(
    signup_form, monkeypatch, django_capture_on_commit_callbacks
):
    entry_append(entry_make(signup_form))
    [(entry_id, payload)] = stream.read(consumer="died", count=10)
    # Recorded, but the worker died before the confirmation was queued (no on-commit run).
    drain.signup_record(SignupEntry.loads(stream.unseal(payload)), form=signup_form, intake_id=entry_id)
    assert mail.outbox == []
    monkeypatch.setattr(stream, "STALE_MS", 0)

    with django_capture_on_commit_callbacks(execute=True):
        drain.signups_drain()

    assert [m.to for m in mail.outbox] == [["river@example.com"]]
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.REQUESTED).count() == 1


def test_the_daily_count_is_for_the_day_of_the_request(signup_form):
    yesterday = timezone.now() - datetime.timedelta(days=1)
    entry_append(entry_make(signup_form, requested_at=yesterday))

    drain.signups_drain()

    stat = DailyStat.objects.get(metric="signups")
    assert stat.day == timezone.localdate(yesterday)
