"""signup_record: what a request leaves in PostgreSQL before anyone confirms."""

import threading

import pytest
from django.db import connection

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Subscriber
from tests.services.signup.intake import sign_up
from tests.support.factories import SubscriberFactory, SubscriptionFactory
from tests.support.signup import last_mail_to


@pytest.mark.django_db
class TestRecord:
    def test_it_records_a_pending_subscriber_and_the_request(self, signup_form, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            sign_up(signup_form)
        subscriber = Subscriber.objects.get()
        assert subscriber.status == Subscriber.Status.PENDING
        event = subscriber.consent_events.get()
        assert event.kind == ConsentEvent.Kind.REQUESTED
        assert event.form == signup_form
        assert sorted(event.topic_ids) == sorted(signup_form.topics.values_list("pk", flat=True))
        assert not subscriber.subscriptions.exists(), "nothing is subscribed before confirmation"

    def test_a_new_subscriber_is_stored_as_save_would_store_it(self, signup_form):
        sign_up(signup_form, email="New.Person@Example.COM", attributes={"role": "officer"})
        subscriber = Subscriber.objects.get()
        assert subscriber.email == "New.Person@example.com"
        assert subscriber.email_hmac == email_hmac("new.person@example.com")
        assert len(subscriber.link_key) == 32
        assert subscriber.created_at is not None
        assert subscriber.attributes == {"role": "officer"}

    def test_the_confirmation_email_is_neutral_and_says_who_asked(
        self, signup_form, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            sign_up(signup_form)
        message = last_mail_to("new.person@example.com")
        assert "Confirm" in message.subject
        assert signup_form.campaign.controller_name in message.body
        assert "Kent Police" in message.body
        assert "List-Unsubscribe" not in message.extra_headers

    def test_an_active_address_gets_an_email_and_no_change_until_confirmed(
        self, signup_form, django_capture_on_commit_callbacks
    ):
        general, force = signup_form.topics.order_by("slug")
        subscriber = SubscriberFactory(campaign=signup_form.campaign, email="known@example.com", first_name="Kim")
        SubscriptionFactory(subscriber=subscriber, topic=general)
        with django_capture_on_commit_callbacks(execute=True):
            sign_up(signup_form, email="KNOWN@example.com", topics=[general, force], first_name="Mallory")
        subscriber.refresh_from_db()
        assert subscriber.first_name == "Kim"
        assert list(subscriber.subscriptions.values_list("topic_id", flat=True)) == [general.pk]
        assert "Confirm changes" in last_mail_to("known@example.com").subject

    @pytest.mark.parametrize(
        ("status", "legal_hold"),
        [
            (Subscriber.Status.UNSUBSCRIBED, False),
            (Subscriber.Status.LAPSED, False),
            (Subscriber.Status.PENDING, True),
        ],
    )
    def test_a_withdrawn_or_held_record_keeps_its_details_until_confirmed(self, signup_form, status, legal_hold):
        subscriber = SubscriberFactory(
            campaign=signup_form.campaign,
            email="kept@example.com",
            first_name="Kim",
            attributes={"region": "North"},
            status=status,
            legal_hold=legal_hold,
        )
        sign_up(signup_form, email="kept@example.com", first_name="Mallory", attributes={"region": "South"})
        subscriber.refresh_from_db()
        assert (subscriber.first_name, subscriber.attributes) == ("Kim", {"region": "North"})
        assert ConsentEvent.objects.filter(subscriber=subscriber, kind=ConsentEvent.Kind.REQUESTED).exists()

    def test_a_pending_record_takes_the_newest_unconfirmed_details(self, signup_form):
        SubscriberFactory(
            campaign=signup_form.campaign, email="again@example.com", first_name="Kim", status=Subscriber.Status.PENDING
        )
        sign_up(signup_form, email="again@example.com", first_name="Kit")
        assert Subscriber.objects.get(email="again@example.com").first_name == "Kit"


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_new_address_make_one_subscriber(signup_form):
    from django.db import transaction

    from subscriptions.services.signup.record import _subscriber_locked

    barrier = threading.Barrier(4)
    outcomes, errors = [], []

    def request(email):
        try:
            barrier.wait()
            with transaction.atomic():
                subscriber, created = _subscriber_locked(
                    campaign=signup_form.campaign, email=email, first_name="Sam", attributes={}
                )
                outcomes.append((subscriber.pk, created))
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    emails = ["same@example.com", "SAME@example.com", "same@EXAMPLE.com", "Same@example.com"]
    threads = [threading.Thread(target=request, args=[email]) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Subscriber.objects.count() == 1
    assert sorted(created for _, created in outcomes) == [False, False, False, True]
    assert {pk for pk, _ in outcomes} == {Subscriber.objects.get().pk}
