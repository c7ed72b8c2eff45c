"""The confirmation link over HTTP: tampered, expired and orphaned links, and topics
added only from the inbox."""

import datetime

import pytest
from django.urls import reverse

from subscriptions.models import Subscriber, Subscription
from tests.support.factories import SubscriberFactory
from tests.support.signup import confirm_token_from, last_mail_to
from tests.views.signup.pages import form_post

# Real transactions, so the confirmation task is queued on commit as in production.
pytestmark = pytest.mark.django_db(transaction=True)


class TestConfirmationLinks:
    def test_a_tampered_or_truncated_token_changes_nothing(self, client, form):
        form_post(client, form)
        token = confirm_token_from(last_mail_to("sam@example.com"))
        for bad in [token[:-3] + "abc", token[: len(token) // 2], "garbage"]:
            response = client.post(reverse("signup-confirm", args=[bad]))
            assert response.status_code == 404
        assert Subscriber.objects.get().status == Subscriber.Status.PENDING

    def test_an_expired_link_offers_to_sign_up_again(self, client, form, time_machine):
        form_post(client, form)
        token = confirm_token_from(last_mail_to("sam@example.com"))
        time_machine.move_to(datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(days=8))
        response = client.post(reverse("signup-confirm", args=[token]))
        assert response.status_code == 410
        assert reverse("campaign-landing", args=["police"]) in response.content.decode()
        assert Subscriber.objects.get().status == Subscriber.Status.PENDING

    def test_a_link_for_an_erased_person_shows_the_generic_page(self, client, form):
        form_post(client, form)
        token = confirm_token_from(last_mail_to("sam@example.com"))
        Subscriber.objects.all().delete()
        response = client.post(reverse("signup-confirm", args=[token]))
        assert response.status_code == 404
        assert not Subscriber.objects.exists()

    def test_an_active_person_adds_topics_only_from_their_inbox(self, client, form, forces):
        subscriber = SubscriberFactory(campaign=form.campaign, email="sam@example.com")
        Subscription.objects.create(subscriber=subscriber, topic=forces[0], source="page")
        form_post(client, form, topics=["kent-police", "essex-police"])
        assert subscriber.subscriptions.count() == 1
        token = confirm_token_from(last_mail_to("sam@example.com"))
        client.post(reverse("signup-confirm", args=[token]))
        assert set(subscriber.subscriptions.values_list("topic__slug", flat=True)) == {"kent-police", "essex-police"}
