"""Unsubscribe over HTTP: the page behind the link, and the RFC 8058 one-click POST."""

import threading

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, DailyStat, Subscriber, Suppression
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.run import mailing_send_batches
from subscriptions.tokens import LinkPurpose, make_link_token
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory, TopicFactory
from tests.support.mailing_fixtures import make_mailing, smtp_sink  # noqa: F401
from tests.support.nothing_left import assert_nothing_left

EMAIL = "cordelia.ashgrove@example.com"
NAME = "Cordelia"
ONE_CLICK = "List-Unsubscribe=One-Click"
URLENCODED = "application/x-www-form-urlencoded"


@pytest.fixture
def person(db):
    campaign = CampaignFactory(slug="careers", inbound_unsubscribe=True, inbound_address="leave@careers.example.org")
    subscriber = SubscriberFactory(campaign=campaign, email=EMAIL, first_name=NAME)
    SubscriptionFactory(subscriber=subscriber, topic=TopicFactory(campaign=campaign, name="Job alerts"))
    return subscriber


def unsubscribe_path(person):
    return reverse("unsubscribe", args=[make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=person)])


def one_click(path, **headers):
    """A POST exactly as a mail provider sends it: no cookies, no CSRF token, a urlencoded body."""
    return Client().post(path, data=ONE_CLICK, content_type=URLENCODED, **headers)


def assert_no_cookie_and_no_redirect(response):
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert not response.cookies
    assert "Location" not in response.headers


def withdrawals():
    return sum(DailyStat.objects.filter(metric="withdrawals").values_list("count", flat=True))


@pytest.mark.django_db
class TestOneClick:
    def test_an_rfc_8058_post_unsubscribes_before_the_response_and_sets_no_cookie(self, person):
        response = one_click(unsubscribe_path(person), HTTP_USER_AGENT="Mozilla/5.0 (compatible; GoogleOneClick)")
        assert_no_cookie_and_no_redirect(response)
        assert "You are unsubscribed" in response.content.decode()
        # Erasure is queued on commit and has not run yet: the status changed in the request.
        person.refresh_from_db()
        assert person.status == "unsubscribed"
        assert person.withdrawn_at is not None
        assert ConsentEvent.objects.get(kind="withdrawn").details == {"reason": "one_click"}

    def test_the_withdrawal_then_leaves_nothing_behind(self, person, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            one_click(unsubscribe_path(person))
        assert not Subscriber.objects.exists()
        assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "withdrawn"
        assert DailyStat.objects.get(metric="erasures").reason == "one_click"
        assert_nothing_left(EMAIL, NAME)

    def test_a_multipart_body_works_too(self, person):
        response = Client().post(unsubscribe_path(person), data={"List-Unsubscribe": "One-Click"})
        assert response.request["CONTENT_TYPE"].startswith("multipart/form-data")
        assert_no_cookie_and_no_redirect(response)
        person.refresh_from_db()
        assert person.status == "unsubscribed"

    def test_it_needs_no_csrf_token_even_when_checks_are_enforced(self, person):
        client = Client(enforce_csrf_checks=True)
        response = client.post(unsubscribe_path(person), data=ONE_CLICK, content_type=URLENCODED)
        assert response.status_code == 200
        person.refresh_from_db()
        assert person.status == "unsubscribed"

    def test_repeating_it_answers_200_every_time_and_withdraws_once(self, person):
        path = unsubscribe_path(person)
        statuses = [one_click(path).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        assert ConsentEvent.objects.filter(kind="withdrawn").count() == 1
        assert withdrawals() == 1

    def test_after_erasure_it_still_answers_200_and_recreates_nothing(self, person, django_capture_on_commit_callbacks):
        path = unsubscribe_path(person)
        with django_capture_on_commit_callbacks(execute=True):
            one_click(path)
        before = (Subscriber.objects.count(), Suppression.objects.count(), withdrawals(), ConsentEvent.objects.count())
        with django_capture_on_commit_callbacks(execute=True):
            response = one_click(path)
        assert_no_cookie_and_no_redirect(response)
        assert "There is nothing to unsubscribe at this link" in response.content.decode()
        after = (Subscriber.objects.count(), Suppression.objects.count(), withdrawals(), ConsentEvent.objects.count())
        assert after == before
        assert_nothing_left(EMAIL, NAME)

    def test_our_own_button_is_recorded_as_the_unsubscribe_page(self, person):
        Client().post(unsubscribe_path(person), {"unsubscribe": "yes"})
        assert ConsentEvent.objects.get(kind="withdrawn").details == {"reason": "unsubscribe_page"}

    def test_a_person_on_legal_hold_stops_getting_mail_and_is_kept(self, person, django_capture_on_commit_callbacks):
        Subscriber.objects.filter(pk=person.pk).update(legal_hold=True)
        with django_capture_on_commit_callbacks(execute=True):
            response = one_click(unsubscribe_path(person))
        assert response.status_code == 200
        person.refresh_from_db()
        assert person.status == "unsubscribed"
        assert person.erasure_due_at is not None


@pytest.mark.django_db
class TestWrongTokens:
    """Policy: a wrong token gets 200 and the neutral page (see views/unsubscribe.py)."""

    @pytest.mark.parametrize("token", ["1.AAAAAAAAAAAAAAAAAAAAAA", "not-a-token", "99999999.abc", "1."])
    def test_a_tampered_or_foreign_token_gets_200_and_writes_nothing(self, person, token):
        response = one_click(reverse("unsubscribe", args=[token]))
        assert_no_cookie_and_no_redirect(response)
        assert "There is nothing to unsubscribe at this link" in response.content.decode()
        person.refresh_from_db()
        assert person.status == "active"
        assert not ConsentEvent.objects.exists()
        assert not DailyStat.objects.exists()

    def test_a_manage_token_does_not_unsubscribe(self, person):
        one_click(reverse("unsubscribe", args=[make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)]))
        person.refresh_from_db()
        assert person.status == "active"

    def test_a_revoked_link_does_not_unsubscribe(self, person):
        path = unsubscribe_path(person)
        Subscriber.objects.filter(pk=person.pk).update(link_key="f" * 32)
        one_click(path)
        person.refresh_from_db()
        assert person.status == "active"


@pytest.mark.django_db
class TestThePage:
    def test_get_shows_a_button_and_changes_nothing(self, person):
        response = Client().get(unsubscribe_path(person))
        page = response.content.decode()
        assert response.status_code == 200
        assert '<form method="post"' in page
        assert "Unsubscribe" in page
        assert "Set-Cookie" not in response.headers
        assert "no-store" in response["Cache-Control"]
        person.refresh_from_db()
        assert person.status == "active"
        assert not ConsentEvent.objects.exists()

    def test_it_offers_some_topics_only_through_the_preference_centre(self, person):
        page = Client().get(unsubscribe_path(person)).content.decode()
        manage = reverse("manage", args=[make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)])
        assert f'href="{manage}"' in page
        assert "some topics only" in page
        assert Client().get(manage).status_code == 200

    def test_a_link_that_finds_no_one_says_so_without_saying_why(self, person, django_capture_on_commit_callbacks):
        path = unsubscribe_path(person)
        with django_capture_on_commit_callbacks(execute=True):
            one_click(path)
        erased = Client().get(path)
        tampered = Client().get(reverse("unsubscribe", args=["1.AAAAAAAAAAAAAAAAAAAAAA"]))
        assert erased.status_code == tampered.status_code == 404
        assert "There is nothing to unsubscribe at this link" in erased.content.decode()
        strip = [line for line in erased.content.decode().splitlines() if "nonce" not in line]
        assert strip == [line for line in tampered.content.decode().splitlines() if "nonce" not in line]


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_one_click_posts_make_one_withdrawal(person):
    path = unsubscribe_path(person)
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def press() -> None:
        try:
            barrier.wait(timeout=10)
            statuses.append(one_click(path).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=press) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200] * 10
    assert withdrawals() == 1
    assert DailyStat.objects.get(metric="erasures").count == 1
    assert Suppression.objects.count() == 1
    assert_nothing_left(EMAIL, NAME)


@pytest.mark.django_db
def test_a_sent_bulk_message_has_the_headers_and_a_working_link(person, request, django_capture_on_commit_callbacks):
    smtp = request.getfixturevalue("smtp_sink")  # the sending engine's SMTP sink: the message as it goes out
    campaign = person.campaign
    mailing = make_mailing(campaign, list(campaign.topics.all()))
    mailing_fan_out(mailing=mailing)
    mailing_send_batches(mailing_id=mailing.pk)
    message = smtp.state.received[0].message()

    url = f"{settings.SITE_URL}{unsubscribe_path(person)}"
    assert message["List-Unsubscribe"] == f"<{url}>, <mailto:leave@careers.example.org?subject=unsubscribe>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f'<a href="{url}">Unsubscribe' in message.get_body(("html",)).get_content()
    assert f"Unsubscribe: {url}" in message.get_body(("plain",)).get_content()

    https_url = message["List-Unsubscribe"].split(",")[0].strip("<> ")
    with django_capture_on_commit_callbacks(execute=True):
        response = one_click(https_url.removeprefix(settings.SITE_URL))
    assert_no_cookie_and_no_redirect(response)
    assert_nothing_left(EMAIL, NAME)
