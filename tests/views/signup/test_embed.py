"""The form embedded on a campaign's own site, and our page without a CSRF token."""

import pytest
from django.test import Client
from django.urls import reverse

from subscriptions.models import ConsentEvent, Subscriber
from tests.views.signup.pages import form_post, form_url

# Real transactions, so the confirmation task is queued on commit as in production.
pytestmark = pytest.mark.django_db(transaction=True)


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
        page = client.get(form_url(form))
        assert not page.cookies
        assert "csrfmiddlewaretoken" not in page.content.decode()
        response = form_post(client, form, headers={"Origin": "http://testserver"})
        assert response.status_code == 302
        assert not response.cookies
        assert Subscriber.objects.get().consent_events.get().source == ConsentEvent.Source.PAGE
        assert len(mailoutbox) == 1
        unstamped = form_post(client, form, email="bot@example.com", stamp=None)
        assert unstamped.status_code == 302  # a bot sees success
        assert Subscriber.objects.count() == 1
        assert len(mailoutbox) == 1
        invalid = form_post(client, form, email="nope")
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
        assert form_post(Client(enforce_csrf_checks=True), form, headers=headers).status_code == 302
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
        response = form_post(Client(enforce_csrf_checks=True), form, headers=headers, stamp=None)
        assert response.status_code == 403
        assert "Your form could not be sent" in response.content.decode()
        assert not Subscriber.objects.exists()
        assert not mailoutbox

    def test_an_invalid_embedded_post_lands_on_our_form_with_errors(self, form):
        response = Client().post(self._embed(form), {"email": "nope", "topics": "kent-police", "consent": "on"})
        assert response.status_code == 400
        assert "Enter an email address in the correct format" in response.content.decode()
        assert not Subscriber.objects.exists()
