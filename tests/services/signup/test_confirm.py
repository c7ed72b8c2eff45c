"""signup_confirm: confirming from the inbox, once."""

import threading

import pytest
from django.db import connection

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Subscriber, Subscription, Suppression
from subscriptions.services.signup.confirm import signup_confirm
from subscriptions.tokens import ConfirmPurpose, read_confirm_token
from tests.services.signup.intake import sign_up
from tests.support.signup import confirm_token_from, last_mail_to


def _claim(email):
    return read_confirm_token(purpose=ConfirmPurpose.SIGNUP, token=confirm_token_from(last_mail_to(email)))


@pytest.mark.django_db
class TestConfirm:
    def test_it_activates_and_subscribes_to_the_chosen_topics(self, signup_form, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            sign_up(signup_form)
        claim = _claim("new.person@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            subscriber = signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert subscriber.status == Subscriber.Status.ACTIVE
        assert subscriber.confirmed_at is not None
        assert subscriber.subscriptions.filter(ended_at__isnull=True).count() == 2
        assert "subscribed" in last_mail_to("new.person@example.com").subject

    def test_it_confirms_only_once(self, signup_form, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            sign_up(signup_form)
        claim = _claim("new.person@example.com")
        first = signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        second = signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert first == second
        assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.CONFIRMED).count() == 1
        assert Subscription.objects.count() == 2

    def test_a_claim_for_someone_elses_event_changes_nothing(self, signup_form, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            sign_up(signup_form, email="one@example.com")
            sign_up(signup_form, email="two@example.com")
        one, two = _claim("one@example.com"), _claim("two@example.com")
        assert signup_confirm(subscriber_id=one.subscriber_id, event_id=two.event_id) is None
        assert not Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).exists()

    def test_confirming_clears_an_earlier_suppression(self, signup_form, django_capture_on_commit_callbacks):
        Suppression.objects.create(
            campaign=signup_form.campaign, email_hmac=email_hmac("new.person@example.com"), reason="withdrawn"
        )
        with django_capture_on_commit_callbacks(execute=True):
            sign_up(signup_form)
        assert Suppression.objects.exists(), "a request alone never lifts a suppression"
        claim = _claim("new.person@example.com")
        signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert not Suppression.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirmations_of_one_token_confirm_once(signup_form):
    sign_up(signup_form)
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
