"""The preference centre and the lost-link page over HTTP, as a person drives them."""

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Delivery, Mailing, Subscriber, Subscription, Suppression
from subscriptions.services.signup.confirm import signup_confirm
from subscriptions.services.signup.request import signup_request
from subscriptions.tokens import ConfirmPurpose, LinkPurpose, make_confirm_token, make_link_token, read_confirm_token
from tests.support.factories import (
    CampaignFactory,
    PrivacyNoticeFactory,
    SignupFormFactory,
    SubscriberFactory,
    SubscriptionFactory,
    TopicFactory,
)
from tests.support.nothing_left import assert_nothing_left
from tests.support.signup import confirm_token_from, last_mail_to

pytestmark = pytest.mark.django_db

EMAIL = "philippa.thorncastle@example.com"
NAME = "Philippa"
NEW_EMAIL = "p.thorncastle@example.net"
CHANGE_LINK = re.compile(r"https?://[^\s\"'<>]+(/email-change/[^/\s\"'<>]+/)")
MANAGE_LINK = re.compile(r"https?://[^\s\"'<>]+(/manage/[^/\s\"'<>]+/)")


@pytest.fixture
def act(django_capture_on_commit_callbacks):
    """Make a request, then run what it queued on commit (mail, erasure), as after a real commit."""

    def act(method, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return method(*args, **kwargs)

    return act


@pytest.fixture
def campaign():
    campaign = CampaignFactory(
        slug="police", extra_fields=[{"name": "region", "label": "Region", "type": "text", "required": False}]
    )
    PrivacyNoticeFactory(campaign=campaign)
    return campaign


@pytest.fixture
def general(campaign):
    return TopicFactory(campaign=campaign, name="General updates", position=0)


@pytest.fixture
def kent(campaign):
    return TopicFactory(campaign=campaign, name="Kent Police", kind="entity", position=1)


@pytest.fixture
def essex(campaign):
    return TopicFactory(campaign=campaign, name="Essex Police", kind="entity", position=2)


@pytest.fixture
def person(campaign, general, kent, essex):
    subscriber = SubscriberFactory(campaign=campaign, email=EMAIL, first_name=NAME, attributes={"region": "Kent"})
    SubscriptionFactory(subscriber=subscriber, topic=general)
    SubscriptionFactory(subscriber=subscriber, topic=kent)
    return subscriber


def manage_path(person, name="manage"):
    return reverse(name, args=[make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)])


def _form(general=(), entities=(), first_name=NAME, **extra):
    return {
        "general": [str(topic.pk) for topic in general],
        "entities": [str(topic.pk) for topic in entities],
        "first_name": first_name,
        "region": "Kent",
        **extra,
    }


def comparable(response) -> bytes:
    """A page without what differs on every render anyway (CSP nonce, CSRF token)."""
    return re.sub(rb'(nonce|value)="[A-Za-z0-9_\-+/=]{20,}"', b"", response.content)


def _open_topics(person):
    return set(Subscription.objects.filter(subscriber=person, ended_at__isnull=True).values_list("topic_id", flat=True))


class TestPreferencePage:
    def test_it_shows_what_the_person_gets_and_never_caches(self, client, person, general, kent, essex):
        response = client.get(manage_path(person))
        assert response.status_code == 200
        page = response.content.decode()
        assert EMAIL in page
        assert re.search(rf'value="{kent.pk}"\s+checked', page)
        assert not re.search(rf'value="{essex.pk}"\s+checked', page)
        assert "no-store" in response["Cache-Control"]
        assert (
            reverse("unsubscribe", args=[make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=person)]) in page
        )

    def test_ending_some_topics_keeps_the_rest_and_says_saved(self, client, person, general, kent, essex):
        response = client.post(manage_path(person), _form(general=[general], entities=[essex]))
        assert response.status_code == 302
        assert response["Location"].endswith("?saved=1")
        assert _open_topics(person) == {general.pk, essex.pk}
        assert "Your preferences are saved" in client.get(response["Location"]).content.decode()
        event = ConsentEvent.objects.get(subscriber=person, kind="changed")
        assert (event.source, sorted(event.topic_ids)) == ("preferences", sorted([general.pk, essex.pk]))

    def test_correcting_the_name_writes_a_changed_event(self, client, person, general, kent):
        client.post(manage_path(person), _form(general=[general], entities=[kent], first_name="Pippa"))
        person.refresh_from_db()
        assert person.first_name == "Pippa"
        assert ConsentEvent.objects.get(kind="changed").details["corrected"] == ["first_name"]

    @pytest.mark.parametrize("name", ["Pippa\r\nBcc: x@evil.test", "<b>Pippa</b>", "Pip\npa"])
    def test_a_name_with_line_breaks_or_markup_is_refused(self, client, person, general, kent, name):
        response = client.post(manage_path(person), _form(general=[general], entities=[kent], first_name=name))
        assert response.status_code == 400
        assert "no line breaks or the characters" in response.content.decode()
        person.refresh_from_db()
        assert person.first_name == NAME
        assert not ConsentEvent.objects.exists()

    def test_unticking_everything_unsubscribes_and_leaves_nothing(self, act, client, person):
        response = act(client.post, manage_path(person), _form())
        assert response.status_code == 200
        assert "You are unsubscribed" in response.content.decode()
        assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "withdrawn"
        assert_nothing_left(EMAIL, NAME)


class TestBadLinks:
    def test_a_tampered_token_shows_the_generic_page_and_changes_nothing(self, client, person, general):
        token = make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        response = client.post(reverse("manage", args=[tampered]), _form(general=[general]))
        assert response.status_code == 404
        assert "This link has not worked" in response.content.decode()
        assert _open_topics(person) != {general.pk}

    def test_tokens_for_other_purposes_or_people_do_not_open_the_page(self, client, person, campaign):
        unsubscribe_token = make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=person)
        other = SubscriberFactory(campaign=campaign)
        borrowed = f"{other.pk}.{make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person).partition('.')[2]}"
        for token in (unsubscribe_token, borrowed, "123456789.abc", "not-a-token"):
            assert client.get(reverse("manage", args=[token])).status_code == 404

    def test_an_unknown_and_a_known_but_erased_person_look_the_same(self, act, client, person):
        path = manage_path(person)
        unknown = client.get(reverse("manage", args=["999999." + "A" * 22]))
        act(client.post, reverse("manage-delete", args=[path.split("/")[2]]))
        erased = client.get(path)
        assert (erased.status_code, comparable(erased)) == (unknown.status_code, comparable(unknown))

    def test_rotating_the_link_key_revokes_old_links(self, client, person):
        path = manage_path(person)
        Subscriber.objects.filter(pk=person.pk).update(link_key="0" * 32)
        assert client.get(path).status_code == 404


class TestEmailChange:
    def test_the_new_address_must_confirm_from_its_own_inbox(self, act, client, person, general, kent):
        old_manage = manage_path(person)
        response = act(client.post, manage_path(person, "manage-email"), {"email": NEW_EMAIL})
        assert "Check your new inbox" in response.content.decode()
        person.refresh_from_db()
        assert person.email == EMAIL

        confirm_path = CHANGE_LINK.search(last_mail_to(NEW_EMAIL).body).group(1)
        assert "Confirm" in client.get(confirm_path).content.decode()
        person.refresh_from_db()
        assert person.email == EMAIL, "a GET (a mail scanner) changes nothing"

        response = act(client.post, confirm_path)
        assert "Your email address is changed" in response.content.decode()
        person.refresh_from_db()
        assert person.email == NEW_EMAIL
        assert "different address" in last_mail_to(EMAIL).subject
        assert client.get(old_manage).status_code == 404, "links mailed to the old address stop working"
        new_manage = MANAGE_LINK.search(response.content.decode()).group(1)
        assert client.get(new_manage).status_code == 200
        assert_nothing_left(EMAIL)

    def test_a_second_use_of_the_link_changes_nothing_more(self, act, client, person):
        act(client.post, manage_path(person, "manage-email"), {"email": NEW_EMAIL})
        confirm_path = CHANGE_LINK.search(last_mail_to(NEW_EMAIL).body).group(1)
        act(client.post, confirm_path)
        again = act(client.post, confirm_path)
        assert again.status_code == 200
        assert ConsentEvent.objects.filter(details__change="email_changed").count() == 1

    def test_a_used_link_replayed_shows_no_manage_link(self, act, client, person, redis_client):
        act(client.post, manage_path(person, "manage-email"), {"email": NEW_EMAIL})
        first_link = CHANGE_LINK.search(last_mail_to(NEW_EMAIL).body).group(1)
        act(client.post, first_link)
        redis_client.flushdb()  # the sign-up limits allow one email per window
        person.refresh_from_db()
        act(client.post, manage_path(person, "manage-email"), {"email": "third@example.org"})
        act(client.post, CHANGE_LINK.search(last_mail_to("third@example.org").body).group(1))
        # Whoever holds the first address now replays its link: the current key must not leak.
        replay = act(Client().post, first_link).content.decode()
        assert MANAGE_LINK.search(replay) is None
        assert "This link has been used" in replay

    def test_a_tampered_confirmation_link_changes_nothing(self, act, client, person):
        act(client.post, manage_path(person, "manage-email"), {"email": NEW_EMAIL})
        confirm_path = CHANGE_LINK.search(last_mail_to(NEW_EMAIL).body).group(1)
        response = client.post(confirm_path[:-3] + "x/")
        assert response.status_code == 404
        person.refresh_from_db()
        assert person.email == EMAIL

    def test_a_token_made_for_another_purpose_is_refused(self, client, person):
        event = ConsentEvent.objects.create(
            subscriber=person, kind="changed", source="preferences",
            details={"change": "email_change_requested", "new_email": NEW_EMAIL},
        )  # fmt: skip
        signup_token = make_confirm_token(
            purpose=ConfirmPurpose.SIGNUP, campaign_id=person.campaign_id, subscriber_id=person.pk,
            event_id=event.pk, valid_days=1,
        )  # fmt: skip
        assert client.post(reverse("manage-email-confirm", args=[signup_token])).status_code == 404
        person.refresh_from_db()
        assert person.email == EMAIL

    def test_an_invalid_address_is_refused_with_a_message(self, client, person):
        response = client.post(manage_path(person, "manage-email"), {"email": "not an address"})
        assert response.status_code == 400
        assert "Enter an email address in the correct format" in response.content.decode()


class TestDownload:
    def test_it_is_a_json_attachment_of_everything_held_and_never_cached(self, client, person, campaign, kent):
        client.post(manage_path(person), _form(entities=[kent]))
        mailing = Mailing.objects.create(campaign=campaign, subject="Kent is recruiting", body="Hello")
        Delivery.objects.create(mailing=mailing, subscriber=person, status="sent")
        other = SubscriberFactory(campaign=campaign, email="ignatius.other@example.com", first_name="Ignatius")
        Delivery.objects.create(mailing=mailing, subscriber=other, status="sent")

        response = client.get(manage_path(person, "manage-download"))

        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert response["Content-Disposition"] == 'attachment; filename="police-my-data.json"'
        assert "no-store" in response["Cache-Control"]
        data = json.loads(response.content)
        assert data["subscriber"]["email"] == EMAIL
        assert {row["topic"]: row["ended_at"] is None for row in data["subscriptions"]} == {
            "General updates": False,
            "Kent Police": True,
        }
        assert [event["kind"] for event in data["consent_events"]] == ["changed"]
        assert [(d["mailing_subject"], d["status"]) for d in data["deliveries"]] == [("Kent is recruiting", "sent")]
        assert b"ignatius" not in response.content.lower()

    def test_the_preference_page_offers_a_readable_page_beside_the_file(self, client, person):
        page = client.get(manage_path(person)).content.decode()

        assert f'href="{manage_path(person, "manage-download")}?format=page"' in page
        assert f'href="{manage_path(person, "manage-download")}"' in page

    def test_the_readable_page_shows_what_is_held_and_the_persons_rights(self, client, person, campaign, kent):
        mailing = Mailing.objects.create(campaign=campaign, subject="Kent is recruiting", body="Hello")
        Delivery.objects.create(mailing=mailing, subscriber=person, status="sent")

        response = client.get(manage_path(person, "manage-download") + "?format=page")

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert "Content-Disposition" not in response
        assert "no-store" in response["Cache-Control"]
        page = response.content.decode()
        for shown in (EMAIL, NAME, "Kent Police", "Kent is recruiting", "https://ico.org.uk/make-a-complaint/"):
            assert shown in page
        assert "govuk-summary-list" in page
        assert "Your rights" in page

    def test_the_readable_page_needs_a_working_link(self, client, person):
        path = manage_path(person, "manage-download") + "?format=page"
        Subscriber.objects.filter(pk=person.pk).update(link_key="0" * 32)

        assert client.get(path).status_code == 404


class TestDelete:
    def test_the_confirm_page_changes_nothing(self, client, person):
        response = client.get(manage_path(person, "manage-delete"))
        assert "Delete my data" in response.content.decode()
        person.refresh_from_db()
        assert person.status == "active"

    def test_deleting_erases_everything_and_old_links_say_so_plainly(self, act, client, person):
        unsubscribe_path = reverse(
            "unsubscribe", args=[make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=person)]
        )
        manage = manage_path(person)
        response = act(client.post, manage_path(person, "manage-delete"))
        assert "Your data is being deleted" in response.content.decode()
        assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "erased"
        assert_nothing_left(EMAIL, NAME)
        assert client.get(manage).status_code == 404
        gone = client.get(unsubscribe_path)
        assert "There is nothing to unsubscribe at this link" in gone.content.decode()

    def test_a_person_on_legal_hold_stops_getting_mail_but_is_kept(self, act, client, person):
        Subscriber.objects.filter(pk=person.pk).update(legal_hold=True)
        act(client.post, manage_path(person, "manage-delete"))
        person.refresh_from_db()
        assert person.status == "unsubscribed"
        assert person.erasure_due_at is not None


def test_signing_up_again_after_erasure_takes_a_fresh_double_opt_in(act, client, person, campaign, general):
    act(client.post, manage_path(person, "manage-delete"))
    form = SignupFormFactory(campaign=campaign, topics=[general])
    act(
        signup_request,
        form=form, email=EMAIL, first_name=NAME, topics=[general], attributes={}, source=ConsentEvent.Source.PAGE,
    )  # fmt: skip
    returning = Subscriber.objects.get(email=EMAIL)
    assert returning.status == "pending"
    assert Suppression.objects.filter(email_hmac=email_hmac(EMAIL)).exists(), "suppressed until confirmed"
    claim = read_confirm_token(purpose=ConfirmPurpose.SIGNUP, token=confirm_token_from(last_mail_to(EMAIL)))
    act(signup_confirm, subscriber_id=claim.subscriber_id, event_id=claim.event_id)
    assert Subscriber.objects.get(email=EMAIL).status == "active"
    assert not Suppression.objects.filter(email_hmac=email_hmac(EMAIL)).exists()


class TestLostLink:
    def _ask(self, act, email, ip="198.51.100.7"):
        client = Client(REMOTE_ADDR=ip)
        return act(client.post, reverse("manage-lost", args=["police"]), {"email": email})

    def test_a_subscribed_address_is_mailed_its_link(self, act, person, client):
        response = self._ask(act, EMAIL)
        assert response.status_code == 200
        path = MANAGE_LINK.search(last_mail_to(EMAIL).body).group(1)
        assert client.get(path).status_code == 200

    def test_the_page_is_the_same_whether_or_not_the_address_is_known(self, act, person, mailoutbox):
        known = self._ask(act, EMAIL, ip="198.51.100.1")
        unknown = self._ask(act, "nobody.here@example.com", ip="198.51.100.2")
        assert known.status_code == unknown.status_code == 200
        assert comparable(known) == comparable(unknown)
        assert [message.to for message in mailoutbox] == [[EMAIL]]

    def test_it_is_rate_limited_like_sign_up_for_known_and_unknown_alike(self, act, person, settings):
        settings.SIGNUP_LIMIT_PER_IP_PER_MINUTE = 3
        statuses = [self._ask(act, f"someone{i}@example.com").status_code for i in range(3)]
        assert [*statuses, self._ask(act, EMAIL).status_code] == [200, 200, 200, 429]
        assert self._ask(act, EMAIL, ip="203.0.113.9").status_code == 200
        assert self._ask(act, EMAIL, ip="203.0.113.10").status_code == 429, "one email per address per window"
        assert self._ask(act, "nobody@example.com", ip="203.0.113.11").status_code == 200
        assert self._ask(act, "nobody@example.com", ip="203.0.113.12").status_code == 429

    def test_an_unknown_campaign_is_not_found(self, client):
        assert client.get(reverse("manage-lost", args=["no-such-campaign"])).status_code == 404
