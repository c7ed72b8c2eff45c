"""Finding a person by exact address in the admin: a POST, so the address never lands in a URL
(nor in an access log): not in the page asked for, not in a redirect, not in a link."""

import datetime
import re
from urllib.parse import quote, quote_plus

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from subscriptions.admin import data_requests
from subscriptions.models import AuditEvent, Permission
from subscriptions.services.privacy import Action
from tests.support.admin_staff import member, signed_in
from tests.support.factories import CampaignFactory, TopicFactory
from tests.support.lifecycle import person_with_history

pytestmark = pytest.mark.django_db

EMAIL = "tobias.wren@example.com"
FIND = "admin:subscriptions_subscriber_find"
CHANGELIST = "admin:subscriptions_subscriber_changelist"
URL_ATTRIBUTE = re.compile(r'(?:href|action|src|formaction)="([^"]*)"')


def mid_minute() -> datetime.datetime:
    """Halfway through the current minute. With the clock stopped there, every request of
    a test counts in the same fixed window: none can fall into the next one mid-loop."""
    return timezone.now().replace(second=30, microsecond=0)


@pytest.fixture
def campaigns():
    return CampaignFactory(name="Civil service jobs"), CampaignFactory(name="Police recruitment")


@pytest.fixture
def people(campaigns):
    return [
        person_with_history(
            campaign=campaign, email=EMAIL, first_name="Tobias", topics=[TopicFactory(campaign=campaign)]
        )
        for campaign in campaigns
    ]


@pytest.fixture
def officer(client, campaigns):
    user = member(campaigns[0], Permission.DATA_REQUESTS)
    signed_in(client, user)
    return user


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))


def urls_of(response) -> list[str]:
    """Every URL the flow produced: each redirect, the page finally asked for, and every link on it."""
    final = response.wsgi_request.get_full_path()
    redirects = [url for url, _status in getattr(response, "redirect_chain", [])]
    location = [response["Location"]] if response.has_header("Location") else []
    return [*redirects, *location, final, *URL_ATTRIBUTE.findall(response.content.decode())]


def assert_no_address_in(urls: list[str], address: str = EMAIL) -> None:
    forms = {address, address.upper(), quote(address), quote_plus(address), quote(address, safe="")}
    leaked = [url for url in urls if any(form.lower() in url.lower() for form in forms)]
    assert leaked == []


class TestFinding:
    def test_the_page_offers_only_the_members_campaigns_and_posts(self, client, officer, campaigns):
        response = client.get(reverse(FIND))

        assert response.status_code == 200
        page = response.content.decode()
        assert 'method="post"' in page
        assert "Civil service jobs" in page
        assert "Police recruitment" not in page

    def test_a_person_found_by_exact_address_is_opened_by_id(self, client, officer, campaigns, people):
        response = client.post(reverse(FIND), {"campaign": campaigns[0].pk, "email": EMAIL.upper()}, follow=True)

        change = reverse("admin:subscriptions_subscriber_change", args=[people[0].pk])
        assert [url for url, _status in response.redirect_chain] == [change]
        assert response.status_code == 200
        assert_no_address_in(urls_of(response))
        assert actions() == [Action.SEARCHED, "subscriber_viewed"]
        searched = AuditEvent.objects.get(action=Action.SEARCHED)
        assert (searched.actor, searched.campaign_id, searched.target_id) == (officer, campaigns[0].pk, people[0].pk)

    def test_nobody_with_that_address_is_said_plainly_and_no_url_carries_it(self, client, officer, campaigns, people):
        address = "someone.else@example.com"
        response = client.post(reverse(FIND), {"campaign": campaigns[0].pk, "email": address}, follow=True)

        assert response.redirect_chain == []
        assert "Nobody with that address in Civil service jobs" in response.content.decode()
        assert_no_address_in(urls_of(response), address)
        assert actions() == [Action.SEARCHED]

    def test_part_of_an_address_finds_nobody(self, client, officer, campaigns, people):
        response = client.post(reverse(FIND), {"campaign": campaigns[0].pk, "email": "tobias"})

        assert response.status_code == 200
        assert "full email address" in response.content.decode()
        assert actions() == []

    def test_another_campaign_is_refused_and_recorded(self, client, officer, campaigns, people):
        response = client.post(reverse(FIND), {"campaign": campaigns[1].pk, "email": EMAIL})

        assert response.status_code == 404
        assert actions() == ["access_refused"]
        assert AuditEvent.objects.get().target_type == "campaign"

    def test_a_member_without_the_data_requests_permission_is_refused(self, client, campaigns, people):
        signed_in(client, member(campaigns[0], Permission.DASHBOARD, Permission.MANAGE))

        assert client.get(reverse(FIND)).status_code == 404
        assert client.post(reverse(FIND), {"campaign": campaigns[0].pk, "email": EMAIL}).status_code == 404
        assert Action.SEARCHED not in actions()

    def test_searches_are_limited_per_member(self, client, officer, campaigns, people):
        allowed = data_requests.FIND_LIMITS[0].count
        with time_machine.travel(mid_minute(), tick=False):
            answers = [
                client.post(reverse(FIND), {"campaign": campaigns[0].pk, "email": f"n{n}@example.com"}).status_code
                for n in range(allowed + 1)
            ]

            assert answers == [200] * allowed + [429]
            assert actions().count(Action.SEARCHED) == allowed
            signed_in(client, member(campaigns[0], Permission.DATA_REQUESTS))
            assert client.post(reverse(FIND), {"campaign": campaigns[0].pk, "email": EMAIL}).status_code == 302


class TestNoSearchInTheQueryString:
    def test_a_search_in_the_query_string_finds_nobody_and_sends_staff_to_the_find_page(
        self, client, officer, campaigns, people
    ):
        query = {"campaign__id__exact": campaigns[0].pk, "q": EMAIL}
        response = client.get(reverse(CHANGELIST), query)

        assert response.status_code == 302
        assert response["Location"] == reverse(FIND)
        assert Action.SEARCHED not in actions()

    def test_the_list_offers_the_find_page_and_no_search_box(self, client, officer, campaigns, people):
        page = client.get(reverse(CHANGELIST)).content.decode()

        assert reverse(FIND) in page
        assert 'name="q"' not in page

    def test_people_cannot_be_searched_through_the_autocomplete(self, client, officer, campaigns, people):
        query = {"app_label": "subscriptions", "model_name": "subscription", "field_name": "subscriber", "term": EMAIL}
        response = client.get(reverse("admin:autocomplete"), query)

        assert response.status_code in (403, 404)
        assert EMAIL not in response.content.decode()
        assert Action.SEARCHED not in actions()
