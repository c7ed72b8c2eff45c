"""The sign-up page's defences over HTTP: the same answer whatever the address's state,
the honeypot and form stamp, and the rate limits."""

import statistics
import time

import pytest
from django.test import Client

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Subscriber, Suppression
from tests.support.factories import SubscriberFactory
from tests.views.signup.pages import form_post

# Real transactions, so the confirmation task is queued on commit as in production.
pytestmark = pytest.mark.django_db(transaction=True)


class TestNoEnumeration:
    def _signup_response(self, client, form, email):
        response = form_post(client, form, email=email)
        return response.status_code, response.get("Location"), response.content

    def test_every_address_state_gets_the_same_response(self, client, form):
        campaign = form.campaign
        SubscriberFactory(campaign=campaign, email="active@example.com")
        SubscriberFactory(campaign=campaign, email="pending@example.com", status="pending")
        SubscriberFactory(campaign=campaign, email="left@example.com", status="unsubscribed")
        Suppression.objects.create(campaign=campaign, email_hmac=email_hmac("gone@example.com"), reason="erased")
        responses = {
            self._signup_response(Client(REMOTE_ADDR=f"10.0.0.{i}"), form, email)
            for i, email in enumerate(
                ["new@example.com", "active@example.com", "pending@example.com", "left@example.com", "gone@example.com"]
            )
        }
        assert len(responses) == 1

    def test_response_time_does_not_reveal_a_known_address(self, form):
        SubscriberFactory(campaign=form.campaign, email="known@example.com")

        def median_ms(make_email):
            samples = []
            for i in range(15):
                client = Client(REMOTE_ADDR=f"10.1.{len(samples)}.{i}")
                email = make_email(i)
                started = time.perf_counter()
                form_post(client, form, email=email)
                samples.append((time.perf_counter() - started) * 1000)
            return statistics.median(samples)

        new = median_ms(lambda i: f"new{i}@example.com")
        # A known address can only be asked about once per window, so compare a known
        # address against itself across fresh windows by clearing the throttle.
        from django.core.cache import cache

        def known(i):
            cache.clear()
            return "known@example.com"

        known_ms = median_ms(known)
        assert abs(new - known_ms) < 25, f"new {new:.1f} ms vs known {known_ms:.1f} ms"


class TestAbuse:
    def test_a_filled_honeypot_looks_like_success_and_does_nothing(self, client, form, mailoutbox):
        response = form_post(client, form, website="http://spam.example")
        assert response.status_code == 302
        assert not Subscriber.objects.exists()
        assert mailoutbox == []

    def test_a_form_sent_back_too_fast_does_nothing(self, client, form, mailoutbox):
        from subscriptions.abuse import form_stamp

        response = form_post(client, form, stamp=form_stamp())
        assert response.status_code == 302
        assert not Subscriber.objects.exists()
        assert mailoutbox == []

    @pytest.mark.parametrize("stamp", ["", None])
    def test_our_page_posted_without_its_stamp_does_nothing(self, client, form, mailoutbox, stamp):
        response = form_post(client, form, stamp=stamp)
        assert response.status_code == 302
        assert not Subscriber.objects.exists()
        assert mailoutbox == []

    def test_a_forged_stamp_does_nothing(self, client, form, mailoutbox):
        response = form_post(client, form, stamp="1700000000:forged")
        assert response.status_code == 302
        assert mailoutbox == []

    def test_one_address_gets_one_confirmation_per_window(self, form, mailoutbox):
        first = form_post(Client(REMOTE_ADDR="10.2.0.1"), form)
        second = form_post(Client(REMOTE_ADDR="10.2.0.2"), form, first_name="Other")
        assert first.status_code == 302
        assert second.status_code == 429
        assert len(mailoutbox) == 1
        assert ConsentEvent.objects.count() == 1

    def test_the_weekly_cap_holds_even_after_the_window(self, form, mailoutbox, settings):
        settings.CONFIRMATION_EMAIL_WINDOW_SECONDS = 1
        settings.CONFIRMATION_EMAILS_PER_WEEK = 2
        settings.SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR = 100
        statuses = []
        for i in range(3):
            statuses.append(form_post(Client(REMOTE_ADDR=f"10.3.0.{i}"), form).status_code)
            time.sleep(1.1)
        assert statuses == [302, 302, 429]
        assert len(mailoutbox) == 2

    def test_one_ip_is_limited_across_addresses(self, form, settings, mailoutbox):
        settings.SIGNUP_LIMIT_PER_IP_PER_MINUTE = 3
        client = Client(REMOTE_ADDR="10.4.0.1")
        statuses = [form_post(client, form, email=f"p{i}@example.com").status_code for i in range(4)]
        assert statuses == [302, 302, 302, 429]
        assert Subscriber.objects.count() == 3
        assert len(mailoutbox) == 3

    def test_a_proxy_header_is_trusted_only_when_configured(self, form, settings):
        settings.SIGNUP_LIMIT_PER_IP_PER_MINUTE = 1
        spoofing = Client(REMOTE_ADDR="10.5.0.1")
        assert (
            form_post(spoofing, form, email="a@example.com", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 302
        )
        blocked = form_post(spoofing, form, email="b@example.com", headers={"X-Forwarded-For": "2.2.2.2"})
        assert blocked.status_code == 429, "an untrusted header must not mint new buckets"

        settings.TRUSTED_PROXY_HEADER = "X-Forwarded-For"
        proxy = Client(REMOTE_ADDR="10.5.0.2")
        assert form_post(proxy, form, email="c@example.com", headers={"X-Forwarded-For": "3.3.3.3"}).status_code == 302
        assert form_post(proxy, form, email="d@example.com", headers={"X-Forwarded-For": "4.4.4.4"}).status_code == 302

    def test_the_circuit_breaker_stops_all_confirmation_mail(self, form, settings, mailoutbox):
        settings.CONFIRMATION_EMAILS_PER_HOUR = 2
        statuses = [
            form_post(Client(REMOTE_ADDR=f"10.6.0.{i}"), form, email=f"flood{i}@example.com").status_code
            for i in range(3)
        ]
        assert statuses == [302, 302, 429]
        assert len(mailoutbox) == 2
        assert Subscriber.objects.count() == 2

    def test_the_rate_limited_page_is_generic(self, form):
        form_post(Client(REMOTE_ADDR="10.7.0.1"), form)
        response = form_post(Client(REMOTE_ADDR="10.7.0.2"), form)
        assert response.status_code == 429
        assert "sam@example.com" not in response.content.decode()
