"""The whole sign-up path over HTTP, as a person (or a bot) drives it."""

import datetime
import re
import statistics
import time

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import ApiKey, Campaign, ConsentEvent, Subscriber, Subscription, Suppression, Topic
from subscriptions.services.api_keys import api_key_create, api_key_revoke, api_key_rotate
from subscriptions.services.signup import stream
from tests.support.factories import (
    CampaignFactory,
    PrivacyNoticeFactory,
    SignupFormFactory,
    SubscriberFactory,
    TopicFactory,
)
from tests.support.signup import aged_stamp, confirm_token_from, last_mail_to

# Real transactions, so the confirmation task is queued on commit as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def mid_minute() -> datetime.datetime:
    """Halfway through the current minute. With the clock stopped there, every request of
    a test counts in the same fixed window: none can fall into the next one mid-loop."""
    return timezone.now().replace(second=30, microsecond=0)


@pytest.fixture
def campaign():
    campaign = CampaignFactory(slug="police", redirect_allowlist=["www.police-campaign.example"])
    PrivacyNoticeFactory(campaign=campaign)
    return campaign


@pytest.fixture
def forces(campaign):
    return [
        TopicFactory(campaign=campaign, slug=slug, name=name, kind="entity")
        for slug, name in [("kent-police", "Kent Police"), ("essex-police", "Essex Police")]
    ]


@pytest.fixture
def form(campaign, forces):
    return SignupFormFactory(campaign=campaign, slug="forces", topics=forces)


def _without_nonces(content: bytes) -> bytes:
    return re.sub(rb'nonce="[^"]*"', b"", content)


def _url(form):
    return reverse("signup", args=[form.campaign.slug, form.slug])


def _post(client, form, headers=None, **overrides):
    data = {
        "email": "sam@example.com",
        "first_name": "Sam",
        "topics": ["kent-police"],
        "consent": "on",
        "stamp": aged_stamp(),
        "website": "",
    }
    data.update(overrides)
    return client.post(_url(form), {k: v for k, v in data.items() if v is not None}, headers=headers)


class TestSignupPage:
    def test_it_shows_the_form_with_consent_wording_and_privacy_notice(self, client, form):
        response = client.get(_url(form))
        page = response.content.decode()
        assert response.status_code == 200
        assert form.consent_wording in page
        assert "Kent Police" in page
        assert "Essex Police" in page
        assert form.campaign.privacy_notices.get().url in page
        assert 'name="website"' in page, "the honeypot is on the page"

    def test_it_signs_up_confirms_and_welcomes(self, client, form, mailoutbox):
        response = _post(client, form)
        assert response.status_code == 302
        assert response.url == reverse("signup-check-email", args=["police"])
        token = confirm_token_from(last_mail_to("sam@example.com"))

        confirm_page = client.get(reverse("signup-confirm", args=[token]))
        assert confirm_page.status_code == 200
        assert Subscriber.objects.get().status == Subscriber.Status.PENDING, "a GET never confirms"

        confirmed = client.post(reverse("signup-confirm", args=[token]))
        assert confirmed.status_code == 200
        subscriber = Subscriber.objects.get()
        assert subscriber.status == Subscriber.Status.ACTIVE
        assert [s.topic.slug for s in subscriber.subscriptions.all()] == ["kent-police"]
        assert "subscribed" in mailoutbox[-1].subject

    def test_confirming_twice_shows_the_same_page_and_confirms_once(self, client, form):
        _post(client, form)
        token = confirm_token_from(last_mail_to("sam@example.com"))
        first = client.post(reverse("signup-confirm", args=[token]))
        second = client.post(reverse("signup-confirm", args=[token]))
        assert first.status_code == second.status_code == 200
        assert _without_nonces(first.content) == _without_nonces(second.content)
        assert ConsentEvent.objects.filter(kind="confirmed").count() == 1

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"email": "not-an-address"}, "Enter an email address in the correct format"),
            ({"email": "a" * 250 + "@example.com"}, "254 characters or fewer"),
            ({"email": None}, "Enter your email address"),
            ({"first_name": "Sam\r\nBcc: victim@example.com"}, "no line breaks"),
            ({"first_name": "<script>alert(1)</script>"}, "no line breaks or the characters"),
            ({"topics": ["no-such-force"]}, "Select topics from the list"),
            ({"topics": None}, "Select at least one topic"),
            ({"consent": None}, "Confirm that you agree"),
            ({"favourite_colour": "blue"}, "This form does not collect: favourite_colour"),
        ],
    )
    def test_bad_input_gets_a_clear_error_and_writes_nothing(self, client, form, mailoutbox, overrides, message):
        response = _post(client, form, **overrides)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert not Subscriber.objects.exists()
        assert not ConsentEvent.objects.exists()
        assert mailoutbox == []

    def test_a_rejected_form_keeps_what_was_typed(self, client, form):
        response = _post(client, form, consent=None)
        page = response.content.decode()
        assert 'value="sam@example.com"' in page
        assert 'value="Sam"' in page

    def test_a_topic_of_another_campaign_is_refused(self, client, form):
        other = TopicFactory(slug="other-topic")
        response = _post(client, form, topics=[other.slug])
        assert response.status_code == 400
        assert not Subscriber.objects.exists()

    def test_an_ended_campaign_says_so_and_writes_nothing(self, client, form):
        form.campaign.status = "ended"
        form.campaign.save()
        assert client.get(_url(form)).status_code == 410
        response = _post(client, form)
        assert response.status_code == 410
        assert "Sign-ups have closed" in response.content.decode()
        assert not Subscriber.objects.exists()

    def test_a_campaign_ended_between_two_posts_records_nothing_for_the_second(self, client, form, monkeypatch):
        monkeypatch.setattr("subscriptions.views.signup.POST_REUSES_PAGE_SECONDS", 60.0)
        assert _post(client, form).status_code == 302
        Campaign.objects.filter(pk=form.campaign_id).update(status=Campaign.Status.ENDED)
        # Within the window this process still uses the page it checked for the first
        # POST, so the person sees "check your email"; the record step sees the end.
        response = _post(client, form, email="kim@example.com")
        assert response.status_code == 302
        assert stream.backlog() == 0, "the drain ran and dropped it"
        assert not Subscriber.objects.filter(email="kim@example.com").exists()
        assert [m.to for m in mail.outbox if "kim@example.com" in m.to] == []

    def test_a_post_after_the_reuse_window_sees_the_ended_campaign_at_once(self, client, form, monkeypatch):
        assert _post(client, form).status_code == 302
        Campaign.objects.filter(pk=form.campaign_id).update(status=Campaign.Status.ENDED)
        monkeypatch.setattr("subscriptions.views.signup.POST_REUSES_PAGE_SECONDS", 0.0)
        response = _post(client, form, email="kim@example.com")
        assert response.status_code == 410
        assert not Subscriber.objects.filter(email="kim@example.com").exists()

    def test_a_form_edited_between_two_requests_shows_the_new_version(self, client, form, forces):
        assert "Kent Police" in client.get(_url(form)).content.decode()
        form.is_current = False
        form.save()
        SignupFormFactory(
            campaign=form.campaign, slug="forces", version=2, topics=forces[1:], consent_wording="New words."
        )
        page = client.get(_url(form)).content.decode()
        assert "New words." in page
        assert "Kent Police" not in page

    def test_a_topic_renamed_in_place_shows_its_new_name(self, client, form, forces):
        """The form's fields are kept with the page version; any row change makes a new one."""
        assert "Kent Police" in client.get(_url(form)).content.decode()
        Topic.objects.filter(pk=forces[0].pk).update(name="Kent Police (recruiting now)")
        assert "Kent Police (recruiting now)" in client.get(_url(form)).content.decode()

    def test_a_refused_post_leaves_nothing_for_the_next_visitor(self, client, form):
        """The fields are shared between requests: one visitor's values and errors stay on their form."""
        refused = _post(client, form, email="not-an-address", first_name="Visitor One")
        assert refused.status_code == 400
        assert "Visitor One" in refused.content.decode()
        assert "govuk-error-message" in refused.content.decode()
        page = Client().get(_url(form)).content.decode()
        assert "Visitor One" not in page
        assert "not-an-address" not in page
        assert "govuk-error-message" not in page


class TestNoEnumeration:
    def _signup_response(self, client, form, email):
        response = _post(client, form, email=email)
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
                _post(client, form, email=email)
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
        response = _post(client, form, website="http://spam.example")
        assert response.status_code == 302
        assert not Subscriber.objects.exists()
        assert mailoutbox == []

    def test_a_form_sent_back_too_fast_does_nothing(self, client, form, mailoutbox):
        from subscriptions.abuse import form_stamp

        response = _post(client, form, stamp=form_stamp())
        assert response.status_code == 302
        assert not Subscriber.objects.exists()
        assert mailoutbox == []

    @pytest.mark.parametrize("stamp", ["", None])
    def test_our_page_posted_without_its_stamp_does_nothing(self, client, form, mailoutbox, stamp):
        response = _post(client, form, stamp=stamp)
        assert response.status_code == 302
        assert not Subscriber.objects.exists()
        assert mailoutbox == []

    def test_a_forged_stamp_does_nothing(self, client, form, mailoutbox):
        response = _post(client, form, stamp="1700000000:forged")
        assert response.status_code == 302
        assert mailoutbox == []

    def test_one_address_gets_one_confirmation_per_window(self, form, mailoutbox):
        first = _post(Client(REMOTE_ADDR="10.2.0.1"), form)
        second = _post(Client(REMOTE_ADDR="10.2.0.2"), form, first_name="Other")
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
            statuses.append(_post(Client(REMOTE_ADDR=f"10.3.0.{i}"), form).status_code)
            time.sleep(1.1)
        assert statuses == [302, 302, 429]
        assert len(mailoutbox) == 2

    def test_one_ip_is_limited_across_addresses(self, form, settings, mailoutbox):
        settings.SIGNUP_LIMIT_PER_IP_PER_MINUTE = 3
        client = Client(REMOTE_ADDR="10.4.0.1")
        statuses = [_post(client, form, email=f"p{i}@example.com").status_code for i in range(4)]
        assert statuses == [302, 302, 302, 429]
        assert Subscriber.objects.count() == 3
        assert len(mailoutbox) == 3

    def test_a_proxy_header_is_trusted_only_when_configured(self, form, settings):
        settings.SIGNUP_LIMIT_PER_IP_PER_MINUTE = 1
        spoofing = Client(REMOTE_ADDR="10.5.0.1")
        assert _post(spoofing, form, email="a@example.com", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 302
        blocked = _post(spoofing, form, email="b@example.com", headers={"X-Forwarded-For": "2.2.2.2"})
        assert blocked.status_code == 429, "an untrusted header must not mint new buckets"

        settings.TRUSTED_PROXY_HEADER = "X-Forwarded-For"
        proxy = Client(REMOTE_ADDR="10.5.0.2")
        assert _post(proxy, form, email="c@example.com", headers={"X-Forwarded-For": "3.3.3.3"}).status_code == 302
        assert _post(proxy, form, email="d@example.com", headers={"X-Forwarded-For": "4.4.4.4"}).status_code == 302

    def test_the_circuit_breaker_stops_all_confirmation_mail(self, form, settings, mailoutbox):
        settings.CONFIRMATION_EMAILS_PER_HOUR = 2
        statuses = [
            _post(Client(REMOTE_ADDR=f"10.6.0.{i}"), form, email=f"flood{i}@example.com").status_code for i in range(3)
        ]
        assert statuses == [302, 302, 429]
        assert len(mailoutbox) == 2
        assert Subscriber.objects.count() == 2

    def test_the_rate_limited_page_is_generic(self, form):
        _post(Client(REMOTE_ADDR="10.7.0.1"), form)
        response = _post(Client(REMOTE_ADDR="10.7.0.2"), form)
        assert response.status_code == 429
        assert "sam@example.com" not in response.content.decode()


class TestConfirmationLinks:
    def test_a_tampered_or_truncated_token_changes_nothing(self, client, form):
        _post(client, form)
        token = confirm_token_from(last_mail_to("sam@example.com"))
        for bad in [token[:-3] + "abc", token[: len(token) // 2], "garbage"]:
            response = client.post(reverse("signup-confirm", args=[bad]))
            assert response.status_code == 404
        assert Subscriber.objects.get().status == Subscriber.Status.PENDING

    def test_an_expired_link_offers_to_sign_up_again(self, client, form, time_machine):
        _post(client, form)
        token = confirm_token_from(last_mail_to("sam@example.com"))
        time_machine.move_to(datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(days=8))
        response = client.post(reverse("signup-confirm", args=[token]))
        assert response.status_code == 410
        assert reverse("campaign-landing", args=["police"]) in response.content.decode()
        assert Subscriber.objects.get().status == Subscriber.Status.PENDING

    def test_a_link_for_an_erased_person_shows_the_generic_page(self, client, form):
        _post(client, form)
        token = confirm_token_from(last_mail_to("sam@example.com"))
        Subscriber.objects.all().delete()
        response = client.post(reverse("signup-confirm", args=[token]))
        assert response.status_code == 404
        assert not Subscriber.objects.exists()

    def test_an_active_person_adds_topics_only_from_their_inbox(self, client, form, forces):
        subscriber = SubscriberFactory(campaign=form.campaign, email="sam@example.com")
        Subscription.objects.create(subscriber=subscriber, topic=forces[0], source="page")
        _post(client, form, topics=["kent-police", "essex-police"])
        assert subscriber.subscriptions.count() == 1
        token = confirm_token_from(last_mail_to("sam@example.com"))
        client.post(reverse("signup-confirm", args=[token]))
        assert set(subscriber.subscriptions.values_list("topic__slug", flat=True)) == {"kent-police", "essex-police"}


class TestEmbeddedForm:
    def _embed(self, form):
        return reverse("signup-embed", args=[form.campaign.slug, form.slug])

    def test_a_cross_site_post_without_csrf_token_is_accepted(self, form, mailoutbox):
        client = Client(enforce_csrf_checks=True)
        response = client.post(
            self._embed(form),
            {"email": "embed@example.com", "topics": "kent-police", "consent": "on"},
            HTTP_ORIGIN="https://www.police-campaign.example",
        )
        assert response.status_code == 303
        assert response["Location"] == reverse("signup-check-email", args=["police"])
        assert Subscriber.objects.get().consent_events.get().source == ConsentEvent.Source.EMBED
        assert len(mailoutbox) == 1

    def test_next_goes_back_to_an_allow_listed_page_only(self, form):
        client = Client(enforce_csrf_checks=True)
        data = {"email": "one@example.com", "topics": "kent-police", "consent": "on"}
        allowed = client.post(self._embed(form), {**data, "next": "https://www.police-campaign.example/thanks"})
        assert allowed["Location"] == "https://www.police-campaign.example/thanks"
        data["email"] = "two@example.com"
        evil = client.post(self._embed(form), {**data, "next": "https://evil.example/phish"})
        assert evil["Location"] == reverse("signup-check-email", args=["police"])

    def test_our_own_page_needs_no_csrf_token_or_cookie_but_still_its_stamp(self, form, mailoutbox):
        client = Client(enforce_csrf_checks=True)
        page = client.get(_url(form))
        assert not page.cookies
        assert "csrfmiddlewaretoken" not in page.content.decode()
        response = _post(client, form, headers={"Origin": "http://testserver"})
        assert response.status_code == 302
        assert not response.cookies
        assert Subscriber.objects.get().consent_events.get().source == ConsentEvent.Source.PAGE
        assert len(mailoutbox) == 1
        unstamped = _post(client, form, email="bot@example.com", stamp=None)
        assert unstamped.status_code == 302  # a bot sees success
        assert Subscriber.objects.count() == 1
        assert len(mailoutbox) == 1
        invalid = _post(client, form, email="nope")
        assert invalid.status_code == 400
        assert not invalid.cookies

    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": "http://testserver"},
            {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # our page under no-referrer
            {},  # older browsers and scripts send no Origin
        ],
    )
    def test_our_own_page_takes_posts_from_itself(self, form, headers):
        assert _post(Client(enforce_csrf_checks=True), form, headers=headers).status_code == 302
        assert Subscriber.objects.get().consent_events.get().source == ConsentEvent.Source.PAGE

    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": "https://www.police-campaign.example"},
            {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        ],
    )
    def test_a_form_on_another_site_posting_to_our_page_is_refused_not_dropped(self, form, mailoutbox, headers):
        # Such a form belongs on the embed endpoint; the person sees that it failed.
        response = _post(Client(enforce_csrf_checks=True), form, headers=headers, stamp=None)
        assert response.status_code == 403
        assert "Your form could not be sent" in response.content.decode()
        assert not Subscriber.objects.exists()
        assert not mailoutbox

    def test_an_invalid_embedded_post_lands_on_our_form_with_errors(self, form):
        response = Client().post(self._embed(form), {"email": "nope", "topics": "kent-police", "consent": "on"})
        assert response.status_code == 400
        assert "Enter an email address in the correct format" in response.content.decode()
        assert not Subscriber.objects.exists()


class TestApi:
    def _call(self, client, campaign, key, body, content_type="application/json"):
        return client.post(
            reverse("api-signup", args=[campaign.slug]),
            data=body,
            content_type=content_type,
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )

    def test_a_valid_request_is_accepted_and_mails_a_confirmation(self, client, form, mailoutbox):
        key = api_key_rotate(campaign=form.campaign)
        body = {"email": "api@example.com", "topics": ["essex-police"], "form": "forces", "consent": True}
        response = self._call(client, form.campaign, key, body)
        assert response.status_code == 202
        assert response.json() == {"status": "accepted"}
        assert Subscriber.objects.get().consent_events.get().source == ConsentEvent.Source.API
        assert len(mailoutbox) == 1

    def test_a_wrong_key_is_refused(self, client, form):
        api_key_rotate(campaign=form.campaign)
        response = self._call(client, form.campaign, "tid_wrong", {"email": "x@example.com", "consent": True})
        assert response.status_code == 401
        assert not Subscriber.objects.exists()

    def test_each_key_has_its_own_rate_limit(self, client, form):
        _, crm_secret = api_key_create(campaign=form.campaign, name="CRM", rate_limit_per_minute=1)
        _, site_secret = api_key_create(campaign=form.campaign, name="Website", rate_limit_per_minute=5)
        body = {"email": "a@example.com", "topics": ["essex-police"], "form": "forces", "consent": True}
        with time_machine.travel(mid_minute(), tick=False):
            assert self._call(client, form.campaign, crm_secret, body).status_code == 202
            limited = self._call(client, form.campaign, crm_secret, {**body, "email": "b@example.com"})
            assert limited.status_code == 429
            site = self._call(client, form.campaign, site_secret, {**body, "email": "c@example.com"})
            assert site.status_code == 202
        assert not Subscriber.objects.filter(email="b@example.com").exists()

    def test_a_revoked_key_is_refused(self, client, form):
        key, secret = api_key_create(campaign=form.campaign, name="CRM")
        api_key_revoke(campaign_id=form.campaign.pk, key_id=key.pk)
        response = self._call(client, form.campaign, secret, {"email": "x@example.com", "consent": True})
        assert response.status_code == 401

    def test_a_key_of_another_campaign_is_refused(self, client, form):
        _, secret = api_key_create(campaign=CampaignFactory(), name="CRM")
        response = self._call(client, form.campaign, secret, {"email": "x@example.com", "consent": True})
        assert response.status_code == 401

    def test_the_key_is_stored_hashed(self, form):
        key = api_key_rotate(campaign=form.campaign)
        stored = ApiKey.objects.get(campaign=form.campaign)
        assert key not in stored.key_hash
        assert stored.prefix == key[:10]

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"email": "bad", "topics": ["kent-police"], "consent": True}, 400, "email"),
            ({"email": "a@example.com", "topics": ["kent-police"]}, 400, "consent"),
            ({"email": "a@example.com", "topics": ["nope"], "consent": True}, 400, "topics"),
            ({"email": "a@example.com", "topics": ["kent-police"], "consent": True, "attributes": {"x": 1}}, 400, None),
            ({"email": "a@example.com", "consent": True, "admin": True}, 400, None),
        ],
    )
    def test_bad_input_is_refused_with_a_clear_error(self, client, form, body, status, field):
        key = api_key_rotate(campaign=form.campaign)
        response = self._call(client, form.campaign, key, body)
        assert response.status_code == status
        assert response.json()["error"]
        if field:
            assert field in response.json()["fields"]
        assert not Subscriber.objects.exists()

    def test_non_json_is_refused(self, client, form):
        key = api_key_rotate(campaign=form.campaign)
        assert self._call(client, form.campaign, key, "email=a@example.com", "text/plain").status_code == 415
        assert self._call(client, form.campaign, key, "{not json").status_code == 400
