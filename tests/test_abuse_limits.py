"""Limits that one campaign, or one stranger, must not be able to use against others.

Over HTTP, against the real Redis the counters live in.
"""

import datetime
import json
import time

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import Subscriber
from subscriptions.services.api_keys import api_key_create
from tests.support.factories import (
    CampaignFactory,
    PrivacyNoticeFactory,
    SignupFormFactory,
    SubscriberFactory,
    TopicFactory,
)
from tests.support.signup import aged_stamp

# Real transactions, so the confirmation and manage-link tasks are queued on commit.
pytestmark = pytest.mark.django_db(transaction=True)

VICTIM = "philippa.thorncastle@example.com"


def mid_hour() -> datetime.datetime:
    """Halfway through the current hour. With the clock stopped there, every request of a
    test counts in the same fixed windows: none can fall into the next hour mid-loop."""
    return timezone.now().replace(minute=30, second=30, microsecond=0)


def _form(slug: str):
    campaign = CampaignFactory(slug=slug)
    PrivacyNoticeFactory(campaign=campaign)
    topic = TopicFactory(campaign=campaign, slug="news", name="News")
    return SignupFormFactory(campaign=campaign, slug="join", topics=[topic])


def _sign_up(form, email: str, ip: str) -> int:
    data = {"email": email, "first_name": "Sam", "topics": ["news"], "consent": "on", "stamp": aged_stamp()}
    response = Client(REMOTE_ADDR=ip).post(reverse("signup", args=[form.campaign.slug, form.slug]), data)
    return response.status_code


def _api_sign_up(form, secret: str, email: str) -> int:
    body = {"email": email, "topics": ["news"], "form": form.slug, "consent": True}
    response = Client().post(
        f"/api/v1/campaigns/{form.campaign.slug}/signups",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    return response.status_code


def _lost_link(campaign, email: str, ip: str):
    return Client(REMOTE_ADDR=ip).post(reverse("manage-lost", args=[campaign.slug]), {"email": email})


class TestConfirmationCapIsPerCampaign:
    def test_one_campaigns_flood_does_not_stop_sign_ups_on_another(self, settings, mailoutbox):
        settings.CONFIRMATION_EMAILS_PER_HOUR = 2
        flooded, other = _form("flooded"), _form("other")
        with time_machine.travel(mid_hour(), tick=False):
            statuses = [_sign_up(flooded, f"flood{i}@example.com", f"10.60.0.{i}") for i in range(3)]
            assert statuses == [302, 302, 429], "the cap still stops a flood on its own campaign"
            assert _sign_up(other, "someone@example.com", "10.61.0.1") == 302
        assert Subscriber.objects.filter(campaign=other.campaign).count() == 1

    def test_the_api_path_uses_the_same_per_campaign_cap(self, settings, mailoutbox):
        settings.CONFIRMATION_EMAILS_PER_HOUR = 2
        flooded, other = _form("flooded"), _form("other")
        _, flooded_secret = api_key_create(campaign=flooded.campaign, name="CRM")
        _, other_secret = api_key_create(campaign=other.campaign, name="CRM")
        with time_machine.travel(mid_hour(), tick=False):
            statuses = [_api_sign_up(flooded, flooded_secret, f"api{i}@example.com") for i in range(3)]
            assert statuses == [202, 202, 429]
            assert _api_sign_up(other, other_secret, "someone@example.com") == 202
            assert _sign_up(other, "another@example.com", "10.62.0.1") == 302


class TestLostLinkLimits:
    @pytest.fixture
    def person(self):
        form = _form("police")
        return SubscriberFactory(campaign=form.campaign, email=VICTIM)

    def test_a_strangers_lost_link_request_does_not_block_the_persons_sign_up(self, person, mailoutbox):
        assert _lost_link(person.campaign, VICTIM, "203.0.113.66").status_code == 200
        form = person.campaign.forms.get()
        assert _sign_up(form, "new.person@example.com", "198.51.100.1") == 302
        assert _sign_up(form, VICTIM, "198.51.100.2") == 302, "the sign-up limits are the sign-up's own"

    def test_a_stranger_locks_a_person_out_for_minutes_at_most(self, person, settings, mailoutbox):
        # Windows of a second stand in for the minutes of the defaults: what matters is
        # that no count of a stranger's requests adds a longer lock-out on top.
        settings.CONFIRMATION_EMAIL_WINDOW_SECONDS = 1
        settings.MANAGE_LINK_WINDOW_SECONDS = 1
        for i in range(7):
            assert _lost_link(person.campaign, VICTIM, f"203.0.113.{i}").status_code == 200
            time.sleep(1.1)
        assert _lost_link(person.campaign, VICTIM, "198.51.100.7").status_code == 200
        form = person.campaign.forms.get()
        assert _sign_up(form, VICTIM, "198.51.100.8") == 302

    def test_a_refusal_for_the_address_points_to_the_inbox_not_the_connection(self, person, mailoutbox):
        assert _lost_link(person.campaign, VICTIM, "203.0.113.66").status_code == 200
        refused = _lost_link(person.campaign, VICTIM, "198.51.100.9")
        assert refused.status_code == 429
        page = refused.content.decode()
        assert "from your connection" not in page
        assert "check your inbox" in page.lower()
        assert VICTIM not in page
        assert int(refused["Retry-After"]) <= 600
        assert len(mailoutbox) == 1
