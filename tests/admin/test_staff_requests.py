"""The data protection officer's work in the admin, over HTTP as a logged-in staff member:
(finding by exact address: test_find_person) export, rectify, restrict, hold, erase; campaign end
dates and privacy notices."""

import datetime
import json

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from subscriptions.models import AuditEvent, Campaign, Mailing, Permission, PrivacyNotice, Subscriber
from subscriptions.services.privacy import Action
from tests.support.admin_staff import member, reauthenticated, signed_in
from tests.support.factories import CampaignFactory, PrivacyNoticeFactory, StaffUserFactory, TopicFactory
from tests.support.lifecycle import held_intact, person_with_history
from tests.support.nothing_left import assert_nothing_left
from tests.support.staff import staff_client

pytestmark = pytest.mark.django_db

EMAIL, NAME = "tobias.wren@example.com", "Tobias"
CHANGELIST = "admin:subscriptions_subscriber_changelist"


@pytest.fixture
def staff(client):
    user = StaffUserFactory()
    staff_client(client, user)
    reauthenticated(client, user)
    return user


@pytest.fixture
def campaign():
    return CampaignFactory()


@pytest.fixture
def person(campaign):
    return person_with_history(
        campaign=campaign, email=EMAIL, first_name=NAME, topics=[TopicFactory(campaign=campaign)]
    )


def request_url(subscriber_id: int, action: str) -> str:
    return reverse("admin:subscriptions_subscriber_request", args=[subscriber_id, action])


def post_request(client, person, action, **data):
    return client.post(request_url(person.pk, action), {"campaign": person.campaign_id, **data})


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))


def said(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


class TestThePersonsPage:
    def test_the_persons_page_offers_the_requests_and_no_direct_editing(self, client, staff, person):
        response = client.get(reverse("admin:subscriptions_subscriber_change", args=[person.pk]))

        page = response.content.decode()
        for action in ("export", "rectify", "restrict", "hold", "erase"):
            assert request_url(person.pk, action) in page
        assert 'name="_save"' not in page
        assert client.post(reverse("admin:subscriptions_subscriber_delete", args=[person.pk])).status_code == 403


class TestExport:
    def test_it_downloads_everything_held_as_json_and_audits_it(self, client, staff, person):
        response = post_request(client, person, "export")

        assert response["Content-Disposition"] == f'attachment; filename="subscriber-{person.pk}.json"'
        data = json.loads(response.content)
        assert (data["subscriber"]["email"], data["subscriber"]["first_name"]) == (EMAIL, NAME)
        assert actions() == [Action.EXPORTED]

    def test_the_campaign_is_the_persons_own_whatever_the_form_says(self, client, staff, person):
        response = client.post(request_url(person.pk, "export"), {"campaign": CampaignFactory().pk})

        assert json.loads(response.content)["subscriber"]["email"] == EMAIL
        assert list(AuditEvent.objects.values_list("action", "campaign_id")) == [(Action.EXPORTED, person.campaign_id)]

    def test_a_member_of_another_campaign_is_refused_and_it_is_recorded(self, client, person):
        outsider = member(CampaignFactory(), Permission.DATA_REQUESTS)
        signed_in(client, outsider)
        reauthenticated(client, outsider)

        response = client.post(request_url(person.pk, "export"), {"campaign": person.campaign_id})

        assert response.status_code == 404
        assert "Content-Disposition" not in response
        assert list(AuditEvent.objects.values_list("action", "actor", "target_id")) == [
            ("access_refused", outsider.pk, person.pk)
        ]

    @pytest.mark.parametrize("action", ["export", "erase"])
    def test_exporting_and_erasing_ask_for_a_recent_sign_in_first(self, client, person, action):
        officer = member(person.campaign, Permission.DATA_REQUESTS)
        signed_in(client, officer)

        response = post_request(client, person, action, confirm="on")

        assert response.status_code == 302
        assert "reauthenticate" in response["Location"]
        assert actions() == []
        assert held_intact(person)


class TestChanges:
    def test_rectifying_corrects_the_details(self, client, staff, person):
        response = post_request(
            client, person, "rectify", email="t.wren@example.com", first_name="Toby", attributes="{}"
        )

        assert response.status_code == 302
        person.refresh_from_db()
        assert (person.email, person.first_name) == ("t.wren@example.com", "Toby")
        assert AuditEvent.objects.get().details == {"fields": ["email", "first_name"]}

    def test_restricting_and_lifting_it(self, client, staff, person):
        post_request(client, person, "restrict")
        person.refresh_from_db()
        assert person.restricted

        post_request(client, person, "unrestrict")
        person.refresh_from_db()
        assert not person.restricted
        assert actions() == [Action.RESTRICTED, Action.UNRESTRICTED]

    def test_lifting_a_hold_that_is_not_there_is_refused(self, client, staff, person):
        response = post_request(client, person, "lift-hold")

        assert response.status_code == 200
        assert "is not on legal hold" in response.content.decode()
        assert actions() == []


class TestErasure:
    def test_erasing_needs_a_ticked_confirmation(self, client, staff, person):
        response = post_request(client, person, "erase")

        assert response.status_code == 200
        assert held_intact(person)
        assert actions() == []

    def test_erasing_leaves_nothing_and_returns_to_the_list(self, client, staff, person):
        response = post_request(client, person, "erase", confirm="on")

        assert response.status_code == 302
        assert response["Location"] == reverse(CHANGELIST)
        assert_nothing_left(EMAIL, NAME)
        assert actions() == [Action.ERASED]

    def test_erasing_an_unknown_id_is_not_found_and_changes_nothing(self, client, staff, person):
        response = client.post(request_url(987654, "erase"), {"campaign": person.campaign_id, "confirm": "on"})

        # The same answer another campaign's person gets, so ids reveal nothing.
        assert response.status_code == 404
        assert held_intact(person)
        assert actions() == []

    def test_a_held_person_is_kept_until_the_hold_is_lifted_then_erased(self, client, staff, person):
        post_request(client, person, "hold", reason="Employment tribunal 2026/42")
        post_request(client, person, "erase", confirm="on")

        assert held_intact(person)
        person.refresh_from_db()
        assert (person.legal_hold_set_by, person.status) == (staff, Subscriber.Status.UNSUBSCRIBED)

        response = post_request(client, person, "lift-hold")

        assert "erasure it was delaying is done" in said(response)
        assert_nothing_left(EMAIL, NAME, "Employment tribunal 2026/42")
        assert actions() == [Action.HOLD_PLACED, Action.ERASURE_HELD, Action.HOLD_LIFTED, Action.ERASED]


def campaign_form(campaign, **changes) -> dict[str, str]:
    data = {
        "slug": campaign.slug, "name": campaign.name, "description": "", "brand_colour": "#1d70b8",
        "controller_name": campaign.controller_name, "contact_email": "", "dpo_email": "",
        "sender_name": campaign.sender_name, "sender_email": campaign.sender_email, "inbound_address": "",
        "starts_on": "", "ends_on": "", "tracking_mode": "aggregate", "pending_expiry_days": "7",
        "reconfirm_after_days": "", "reconfirm_grace_days": "30", "max_retention_days": "",
        "delivery_retention_days": "30", "extra_fields": "[]", "redirect_allowlist": "[]",
        "topics-TOTAL_FORMS": "0", "topics-INITIAL_FORMS": "0",
    }  # fmt: skip
    return {**data, **changes}


class TestCampaignEnd:
    def test_staff_see_how_many_will_be_erased_and_when(self, client, staff, campaign, person):
        Campaign.objects.filter(pk=campaign.pk).update(ends_on=datetime.date(2099, 3, 31))

        response = client.get(reverse("admin:subscriptions_campaign_changelist"))

        assert "1 person to be erased on 01 Apr 2099" in response.content.decode()

    def test_an_end_date_in_the_past_is_refused_without_confirmation(self, client, staff, campaign, person):
        url = reverse("admin:subscriptions_campaign_change", args=[campaign.pk])

        response = client.post(url, campaign_form(campaign, ends_on="2020-01-31"))

        assert response.status_code == 200
        assert "31 January 2020 has already passed" in response.content.decode()
        campaign.refresh_from_db()
        assert campaign.ends_on is None
        assert held_intact(person)

    def test_a_confirmed_past_end_date_ends_the_campaign_and_erases_at_once(
        self, client, staff, campaign, person, django_capture_on_commit_callbacks
    ):
        url = reverse("admin:subscriptions_campaign_change", args=[campaign.pk])

        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, campaign_form(campaign, ends_on="2020-01-31", erase_now="on"))

        assert response.status_code == 302
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.ERASED
        assert_nothing_left(EMAIL, NAME)
        assert "campaign_end_confirmed" in actions()

    def test_a_member_who_manages_the_campaign_can_date_its_end_and_others_cannot(self, client, campaign, person):
        url = reverse("admin:subscriptions_campaign_change", args=[campaign.pk])
        signed_in(client, member(campaign, Permission.DASHBOARD, Permission.SEND, Permission.DATA_REQUESTS))

        assert client.post(url, campaign_form(campaign, ends_on="2099-03-31")).status_code == 403

        manager = member(campaign, Permission.MANAGE)
        signed_in(client, manager)
        asked = client.post(url, campaign_form(campaign, ends_on="2099-03-31"))
        assert "reauthenticate" in asked["Location"], "the end date decides when everyone is erased"
        campaign.refresh_from_db()
        assert campaign.ends_on is None

        reauthenticated(client, manager)
        response = client.post(url, campaign_form(campaign, ends_on="2099-03-31"))

        assert response.status_code == 302
        campaign.refresh_from_db()
        assert campaign.ends_on == datetime.date(2099, 3, 31)
        (change,) = AuditEvent.objects.filter(action="campaign_settings_changed", campaign_id=campaign.pk)
        assert change.actor_id == manager.pk
        assert change.details["changes"]["ends_on"] == [None, "2099-03-31"]

    def test_staff_can_draft_the_end_notice(self, client, staff, person):
        campaign = person.campaign
        Campaign.objects.filter(pk=campaign.pk).update(ends_on=datetime.date(2099, 3, 31))

        client.post(
            reverse("admin:subscriptions_campaign_changelist"),
            {"action": "draft_end_notice", "_selected_action": [campaign.pk]},
        )

        mailing = Mailing.objects.get()
        assert (mailing.kind, mailing.status) == (Mailing.Kind.SERVICE_NOTICE, Mailing.Status.DRAFT)


class TestPrivacyNotices:
    def test_publishing_a_new_version_numbers_it_and_can_notify_everyone(self, client, staff, campaign, person):
        PrivacyNoticeFactory(campaign=campaign, version=1)

        response = client.post(
            reverse("admin:subscriptions_privacynotice_add"),
            {
                "campaign": campaign.pk, "url": "https://example.org/privacy/v2", "summary": "Shorter retention.",
                "retention_summary": "Until you leave.", "published_on": "", "notify_subscribers": "on",
            },
        )  # fmt: skip

        assert response.status_code == 302
        assert list(PrivacyNotice.objects.filter(campaign=campaign).values_list("version", flat=True)) == [2, 1]
        assert Mailing.objects.get().kind == Mailing.Kind.SERVICE_NOTICE
        assert Action.NOTICE_PUBLISHED in actions()

    def test_a_published_notice_cannot_be_deleted(self, client, staff, campaign):
        notice = PrivacyNoticeFactory(campaign=campaign)

        response = client.post(reverse("admin:subscriptions_privacynotice_delete", args=[notice.pk]), {"post": "yes"})

        assert response.status_code == 403
        assert PrivacyNotice.objects.filter(pk=notice.pk).exists()
