import threading

import pytest
from django.db import connection

from subscriptions import abuse
from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Subscriber, Subscription, Suppression
from subscriptions.services.signup import CampaignClosed, signup_confirm, signup_request
from subscriptions.tokens import ConfirmPurpose, read_confirm_token
from tests.support.factories import SignupFormFactory, SubscriberFactory, SubscriptionFactory, TopicFactory
from tests.support.signup import confirm_token_from, last_mail_to


@pytest.fixture
def signup_form(db):
    general = TopicFactory(slug="general", name="General updates")
    force = TopicFactory(campaign=general.campaign, slug="kent-police", name="Kent Police", kind="entity")
    return SignupFormFactory(campaign=general.campaign, topics=[general, force])


def _request(form, email="new.person@example.com", topics=None, **kwargs):
    signup_request(
        form=form,
        email=email,
        first_name=kwargs.pop("first_name", "Sam"),
        topics=topics if topics is not None else list(form.topics.all()),
        attributes=kwargs.pop("attributes", {}),
        source=ConsentEvent.Source.PAGE,
    )


def _claim(email):
    return read_confirm_token(purpose=ConfirmPurpose.SIGNUP, token=confirm_token_from(last_mail_to(email)))


@pytest.mark.django_db
class TestRequest:
    def test_it_records_a_pending_subscriber_and_the_request(self, signup_form, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _request(signup_form)
        subscriber = Subscriber.objects.get()
        assert subscriber.status == Subscriber.Status.PENDING
        event = subscriber.consent_events.get()
        assert event.kind == ConsentEvent.Kind.REQUESTED
        assert event.form == signup_form
        assert sorted(event.topic_ids) == sorted(signup_form.topics.values_list("pk", flat=True))
        assert not subscriber.subscriptions.exists(), "nothing is subscribed before confirmation"

    def test_a_new_subscriber_is_stored_as_save_would_store_it(self, signup_form):
        _request(signup_form, email="New.Person@Example.COM", attributes={"role": "officer"})
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
            _request(signup_form)
        message = last_mail_to("new.person@example.com")
        assert "Confirm" in message.subject
        assert signup_form.campaign.controller_name in message.body
        assert "Kent Police" in message.body
        assert "List-Unsubscribe" not in message.extra_headers

    def test_it_refuses_an_ended_campaign_and_writes_nothing(self, signup_form):
        signup_form.campaign.status = "ended"
        signup_form.campaign.save()
        with pytest.raises(CampaignClosed):
            _request(signup_form)
        assert not Subscriber.objects.exists()

    def test_a_second_request_within_the_window_sends_nothing_and_changes_nothing(
        self, signup_form, django_capture_on_commit_callbacks, mailoutbox
    ):
        with django_capture_on_commit_callbacks(execute=True):
            _request(signup_form)
        with pytest.raises(abuse.RateLimited):
            _request(signup_form, first_name="Changed")
        assert len(mailoutbox) == 1
        assert ConsentEvent.objects.count() == 1
        assert Subscriber.objects.get().first_name == "Sam"

    def test_an_active_address_gets_an_email_and_no_change_until_confirmed(
        self, signup_form, django_capture_on_commit_callbacks
    ):
        general, force = signup_form.topics.order_by("slug")
        subscriber = SubscriberFactory(campaign=signup_form.campaign, email="known@example.com", first_name="Kim")
        SubscriptionFactory(subscriber=subscriber, topic=general)
        with django_capture_on_commit_callbacks(execute=True):
            _request(signup_form, email="KNOWN@example.com", topics=[general, force], first_name="Mallory")
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
        _request(signup_form, email="kept@example.com", first_name="Mallory", attributes={"region": "South"})
        subscriber.refresh_from_db()
        assert (subscriber.first_name, subscriber.attributes) == ("Kim", {"region": "North"})
        assert ConsentEvent.objects.filter(subscriber=subscriber, kind=ConsentEvent.Kind.REQUESTED).exists()

    def test_a_pending_record_takes_the_newest_unconfirmed_details(self, signup_form):
        SubscriberFactory(
            campaign=signup_form.campaign, email="again@example.com", first_name="Kim", status=Subscriber.Status.PENDING
        )
        _request(signup_form, email="again@example.com", first_name="Kit")
        assert Subscriber.objects.get(email="again@example.com").first_name == "Kit"


@pytest.mark.django_db
class TestConfirm:
    def test_it_activates_and_subscribes_to_the_chosen_topics(self, signup_form, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _request(signup_form)
        claim = _claim("new.person@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            subscriber = signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert subscriber.status == Subscriber.Status.ACTIVE
        assert subscriber.confirmed_at is not None
        assert subscriber.subscriptions.filter(ended_at__isnull=True).count() == 2
        assert "subscribed" in last_mail_to("new.person@example.com").subject

    def test_it_confirms_only_once(self, signup_form, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _request(signup_form)
        claim = _claim("new.person@example.com")
        first = signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        second = signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert first == second
        assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.CONFIRMED).count() == 1
        assert Subscription.objects.count() == 2

    def test_a_claim_for_someone_elses_event_changes_nothing(self, signup_form, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _request(signup_form, email="one@example.com")
            _request(signup_form, email="two@example.com")
        one, two = _claim("one@example.com"), _claim("two@example.com")
        assert signup_confirm(subscriber_id=one.subscriber_id, event_id=two.event_id) is None
        assert not Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).exists()

    def test_confirming_clears_an_earlier_suppression(self, signup_form, django_capture_on_commit_callbacks):
        Suppression.objects.create(
            campaign=signup_form.campaign, email_hmac=email_hmac("new.person@example.com"), reason="withdrawn"
        )
        with django_capture_on_commit_callbacks(execute=True):
            _request(signup_form)
        assert Suppression.objects.exists(), "a request alone never lifts a suppression"
        claim = _claim("new.person@example.com")
        signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert not Suppression.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirmations_of_one_token_confirm_once(signup_form):
    _request(signup_form)
    from subscriptions.services.signup.emails import signup_confirmation_send

    signup_confirmation_send(event_id=ConsentEvent.objects.get().pk)
    claim = _claim("new.person@example.com")
    barrier = threading.Barrier(4)
    errors = []

    def confirm():
        try:
            barrier.wait()
            signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.CONFIRMED).count() == 1
    assert Subscription.objects.filter(ended_at__isnull=True).count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_new_address_make_one_subscriber(signup_form):
    from django.db import transaction

    from subscriptions.services.signup import _subscriber_locked

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
