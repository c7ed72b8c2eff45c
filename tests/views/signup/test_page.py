"""Our sign-up page over HTTP: the form, a sign-up through to the welcome, bad input,
an ended campaign, and a form or topic changed between requests."""

import pytest
import redis
from django.core import mail
from django.test import Client
from django.urls import reverse

from subscriptions.models import Campaign, ConsentEvent, Subscriber, Topic
from subscriptions.redis_client import HotScript
from subscriptions.services.signup import stream
from tests.support.factories import SignupFormFactory, TopicFactory
from tests.support.signup import confirm_token_from, last_mail_to
from tests.views.signup.pages import form_post, form_url, without_nonces

# Real transactions, so the confirmation task is queued on commit as in production.
pytestmark = pytest.mark.django_db(transaction=True)


class TestSignupPage:
    def test_it_shows_the_form_with_consent_wording_and_privacy_notice(self, client, form):
        response = client.get(form_url(form))
        page = response.content.decode()
        assert response.status_code == 200
        assert form.consent_wording in page
        assert "Kent Police" in page
        assert "Essex Police" in page
        assert form.campaign.privacy_notices.get().url in page
        assert 'name="website"' in page, "the honeypot is on the page"

    def test_it_signs_up_confirms_and_welcomes(self, client, form, mailoutbox):
        response = form_post(client, form)
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
        form_post(client, form)
        token = confirm_token_from(last_mail_to("sam@example.com"))
        first = client.post(reverse("signup-confirm", args=[token]))
        second = client.post(reverse("signup-confirm", args=[token]))
        assert first.status_code == second.status_code == 200
        assert without_nonces(first.content) == without_nonces(second.content)
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
        response = form_post(client, form, **overrides)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert not Subscriber.objects.exists()
        assert not ConsentEvent.objects.exists()
        assert mailoutbox == []

    def test_a_rejected_form_keeps_what_was_typed(self, client, form):
        response = form_post(client, form, consent=None)
        page = response.content.decode()
        assert 'value="sam@example.com"' in page
        assert 'value="Sam"' in page

    def test_a_topic_of_another_campaign_is_refused(self, client, form):
        other = TopicFactory(slug="other-topic")
        response = form_post(client, form, topics=[other.slug])
        assert response.status_code == 400
        assert not Subscriber.objects.exists()

    def test_an_ended_campaign_says_so_and_writes_nothing(self, client, form):
        form.campaign.status = "ended"
        form.campaign.save()
        assert client.get(form_url(form)).status_code == 410
        response = form_post(client, form)
        assert response.status_code == 410
        assert "Sign-ups have closed" in response.content.decode()
        assert not Subscriber.objects.exists()

    def test_a_campaign_ended_between_two_posts_records_nothing_for_the_second(self, client, form, monkeypatch):
        monkeypatch.setattr("subscriptions.views.signup.POST_REUSES_PAGE_SECONDS", 60.0)
        assert form_post(client, form).status_code == 302
        Campaign.objects.filter(pk=form.campaign_id).update(status=Campaign.Status.ENDED)
        # Within the window this process still uses the page it checked for the first
        # POST, so the person sees "check your email"; the record step sees the end.
        response = form_post(client, form, email="kim@example.com")
        assert response.status_code == 302
        assert stream.backlog() == 0, "the drain ran and dropped it"
        assert not Subscriber.objects.filter(email="kim@example.com").exists()
        assert [m.to for m in mail.outbox if "kim@example.com" in m.to] == []

    def test_a_post_after_the_reuse_window_sees_the_ended_campaign_at_once(self, client, form, monkeypatch):
        assert form_post(client, form).status_code == 302
        Campaign.objects.filter(pk=form.campaign_id).update(status=Campaign.Status.ENDED)
        monkeypatch.setattr("subscriptions.views.signup.POST_REUSES_PAGE_SECONDS", 0.0)
        response = form_post(client, form, email="kim@example.com")
        assert response.status_code == 410
        assert not Subscriber.objects.filter(email="kim@example.com").exists()

    def test_a_form_edited_between_two_requests_shows_the_new_version(self, client, form, forces):
        assert "Kent Police" in client.get(form_url(form)).content.decode()
        form.is_current = False
        form.save()
        SignupFormFactory(
            campaign=form.campaign, slug="forces", version=2, topics=forces[1:], consent_wording="New words."
        )
        page = client.get(form_url(form)).content.decode()
        assert "New words." in page
        assert "Kent Police" not in page

    def test_a_topic_renamed_in_place_shows_its_new_name(self, client, form, forces):
        """The form's fields are kept with the page version; any row change makes a new one."""
        assert "Kent Police" in client.get(form_url(form)).content.decode()
        Topic.objects.filter(pk=forces[0].pk).update(name="Kent Police (recruiting now)")
        assert "Kent Police (recruiting now)" in client.get(form_url(form)).content.decode()

    def test_a_refused_post_leaves_nothing_for_the_next_visitor(self, client, form):
        """The fields are shared between requests: one visitor's values and errors stay on their form."""
        refused = form_post(client, form, email="not-an-address", first_name="Visitor One")
        assert refused.status_code == 400
        assert "Visitor One" in refused.content.decode()
        assert "govuk-error-message" in refused.content.decode()
        page = Client().get(form_url(form)).content.decode()
        assert "Visitor One" not in page
        assert "not-an-address" not in page
        assert "govuk-error-message" not in page


def test_a_post_within_the_reuse_window_is_one_redis_script_and_no_sql(
    client, form, monkeypatch, redis_client, django_assert_num_queries
):
    """The intake's promise (docs/adr/0002-signup-intake-stream.md): the rate limits and
    the append are one Redis round trip, and the request never waits on PostgreSQL."""
    monkeypatch.setattr("subscriptions.views.signup.POST_REUSES_PAGE_SECONDS", 60.0)
    assert form_post(client, form, email="first@example.com").status_code == 302  # the page is checked once
    redis_client.set(stream.DRAIN_FLAG, "1", ex=60)  # a drain is under way, so none is asked for
    sent: list[str] = []
    real_script, real_command = HotScript.__call__, redis.Redis.execute_command

    def script(self, **kwargs):
        sent.append("script")
        return real_script(self, **kwargs)

    def command(self, *args, **kwargs):
        sent.append(str(args[0]))
        return real_command(self, *args, **kwargs)

    monkeypatch.setattr(HotScript, "__call__", script)
    monkeypatch.setattr(redis.Redis, "execute_command", command)
    with django_assert_num_queries(0):
        response = form_post(client, form, email="second@example.com")

    assert response.status_code == 302
    assert sent == ["script"]
    assert stream.backlog() == 1, "the second sign-up waits in the stream"
