"""The admin as a campaign team sees it: only their campaigns in every list, filter and form
choice; no query-string lookup past the designed filters; looking at people is audited."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions.audit import audit_record
from subscriptions.models import AuditEvent, ConsentEvent, Mailing, Permission, Subscriber, Suppression
from tests.support.admin_staff import member, reauthenticated, signed_in
from tests.support.factories import CampaignFactory, StaffUserFactory, SubscriberFactory, TopicFactory
from tests.support.lifecycle import person_with_history
from tests.support.mailing_fixtures import BODY, make_mailing
from tests.support.staff import staff_client

pytestmark = pytest.mark.django_db

SUBSCRIBERS = "admin:subscriptions_subscriber_changelist"


@pytest.fixture
def campaigns():
    return CampaignFactory(name="Civil service jobs"), CampaignFactory(name="Police recruitment")


@pytest.fixture
def people(campaigns):
    return [
        person_with_history(
            campaign=campaign,
            email=f"alice@{campaign.slug}.example.com",
            first_name="Alice",
            topics=[TopicFactory(campaign=campaign, name="Job alerts")],
        )
        for campaign in campaigns
    ]


def audited(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


class TestWhoMayUseTheAdmin:
    def test_staff_status_alone_opens_nothing(self, client):
        signed_in(client, StaffUserFactory(is_superuser=False))

        response = client.get(reverse("admin:index"))

        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]

    def test_a_member_sees_only_the_pages_their_permissions_open(self, client, campaigns):
        signed_in(client, member(campaigns[0], Permission.DASHBOARD))

        page = client.get(reverse("admin:index")).content.decode()

        assert reverse("admin:subscriptions_mailing_changelist") in page
        assert reverse("admin:subscriptions_dailystat_changelist") in page
        assert reverse("admin:subscriptions_subscriber_changelist") not in page
        assert reverse("admin:subscriptions_auditevent_changelist") not in page

    def test_a_member_who_is_no_longer_staff_is_kept_out(self, client, campaigns):
        signed_in(client, member(campaigns[0], Permission.DATA_REQUESTS, is_staff=False))

        assert client.get(reverse(SUBSCRIBERS)).status_code == 302


class TestLookups:
    @pytest.mark.parametrize(
        ("route", "query"),
        [
            (SUBSCRIBERS, {"email__startswith": "a"}),
            (SUBSCRIBERS, {"email__regex": "^a"}),
            (SUBSCRIBERS, {"first_name__icontains": "ali"}),
            ("admin:subscriptions_auditevent_changelist", {"details__icontains": "Alice"}),
            ("admin:subscriptions_consentevent_changelist", {"details__icontains": "Alice"}),
            ("admin:subscriptions_subscription_changelist", {"subscriber__email": "alice@example.com"}),
            ("admin:subscriptions_suppression_changelist", {"email_hmac__startswith": "0"}),
        ],
    )
    def test_any_lookup_but_the_designed_filters_is_refused(self, client, campaigns, people, route, query):
        signed_in(client, member(campaigns[0], Permission.DATA_REQUESTS))

        assert client.get(reverse(route), query).status_code == 400

    def test_operators_are_refused_them_too(self, client, people):
        signed_in(client, StaffUserFactory())

        assert client.get(reverse(SUBSCRIBERS), {"email__regex": "^a"}).status_code == 400

    def test_filtering_by_another_campaign_is_refused_and_recorded(self, client, campaigns, people):
        officer = member(campaigns[0], Permission.DATA_REQUESTS)
        signed_in(client, officer)

        response = client.get(reverse(SUBSCRIBERS), {"campaign__id__exact": campaigns[1].pk})

        assert response.status_code == 400
        (refusal,) = audited("access_refused")
        assert (refusal.actor, refusal.target_type, refusal.details) == (
            officer,
            "campaign",
            {"asked_for": str(campaigns[1].pk)},
        )

    def test_a_search_in_the_query_string_is_refused_whatever_the_campaign(self, client, campaigns, people):
        signed_in(client, member(campaigns[0], Permission.DATA_REQUESTS))

        for campaign in campaigns:
            query = {"campaign__id__exact": campaign.pk, "q": people[1].email}
            response = client.get(reverse(SUBSCRIBERS), query)

            assert response.status_code == 302
            assert response["Location"] == reverse("admin:subscriptions_subscriber_find")
        assert audited("subscriber_searched") == []

    def test_the_campaign_filter_offers_only_the_members_campaigns(self, client, campaigns, people):
        signed_in(client, member(campaigns[0], Permission.DATA_REQUESTS))

        page = client.get(reverse(SUBSCRIBERS)).content.decode()

        assert f"campaign__id__exact={campaigns[0].pk}" in page
        assert f"campaign__id__exact={campaigns[1].pk}" not in page
        assert "Police recruitment" not in page


class TestPersonalDataIsAudited:
    def test_filtering_consent_events_is_recorded_with_its_filters(self, client, campaigns, people):
        officer = member(campaigns[0], Permission.DATA_REQUESTS)
        signed_in(client, officer)

        query = {"subscriber__campaign__id__exact": campaigns[0].pk, "kind__exact": "confirmed"}
        response = client.get(reverse("admin:subscriptions_consentevent_changelist"), query)

        assert [event.subscriber for event in response.context["cl"].result_list] == [people[0]]
        (event,) = audited("personal_data_filtered")
        assert (event.actor, event.campaign_id, event.target_type) == (officer, campaigns[0].pk, "consentevent")
        assert event.details["filters"]["kind__exact"] == ["confirmed"]

    def test_an_unfiltered_list_is_not_a_search(self, client, campaigns, people):
        signed_in(client, member(campaigns[0], Permission.DATA_REQUESTS))

        client.get(reverse("admin:subscriptions_consentevent_changelist"))

        assert audited("personal_data_filtered") == []

    def test_opening_a_persons_record_is_recorded(self, client, campaigns, people):
        officer = member(campaigns[0], Permission.DATA_REQUESTS)
        signed_in(client, officer)

        response = client.get(reverse("admin:subscriptions_subscriber_change", args=[people[0].pk]))

        assert response.status_code == 200
        (event,) = audited("subscriber_viewed")
        assert (event.actor, event.campaign_id, event.target_id) == (officer, campaigns[0].pk, people[0].pk)

    def test_opening_another_campaigns_person_is_a_recorded_404(self, client, campaigns, people):
        signed_in(client, member(campaigns[0], Permission.DATA_REQUESTS))

        response = client.get(reverse("admin:subscriptions_subscriber_change", args=[people[1].pk]))

        assert response.status_code == 404
        assert audited("subscriber_viewed") == []
        assert [(e.target_id, e.campaign_id) for e in audited("access_refused")] == [(people[1].pk, campaigns[1].pk)]

    def test_the_trail_shows_a_member_only_their_campaigns_events(self, client, campaigns):
        officer = member(campaigns[0], Permission.DATA_REQUESTS)
        ours = audit_record(actor=None, action="ours", campaign_id=campaigns[0].pk)
        audit_record(actor=None, action="theirs", campaign_id=campaigns[1].pk)
        audit_record(actor=None, action="platform")
        signed_in(client, officer)

        response = client.get(reverse("admin:subscriptions_auditevent_changelist"))

        assert list(response.context["cl"].result_list) == [ours]


class TestPreviewAsAPerson:
    @pytest.fixture
    def mailing(self, campaigns):
        topic = TopicFactory(campaign=campaigns[0])
        return make_mailing(campaigns[0], [topic], status=Mailing.Status.DRAFT)

    def preview(self, client, mailing, subscriber):
        url = reverse("admin:subscriptions_mailing_preview", args=[mailing.pk])
        return client.get(url, {"subscriber": subscriber.pk, "part": "html"})

    def test_a_data_protection_officer_sees_the_persons_copy_and_it_is_recorded(self, client, mailing, people):
        officer = member(mailing.campaign, Permission.DASHBOARD, Permission.DATA_REQUESTS)
        signed_in(client, officer)

        response = self.preview(client, mailing, people[0])

        assert "Hello Alice," in response.content.decode()
        (event,) = audited("mailing_previewed_as_person")
        assert (event.actor, event.target_id, event.details) == (officer, people[0].pk, {"mailing": mailing.pk})

    def test_seeing_mailings_is_not_enough_to_see_a_persons_name(self, client, mailing, people):
        signed_in(client, member(mailing.campaign, Permission.DASHBOARD, Permission.SEND))

        response = self.preview(client, mailing, people[0])

        assert response.status_code == 404
        assert "Alice" not in response.content.decode()
        assert audited("mailing_previewed_as_person") == []
        assert len(audited("access_refused")) == 1

    def test_a_person_of_another_campaign_is_refused(self, client, mailing, people):
        signed_in(client, member(mailing.campaign, Permission.DASHBOARD, Permission.DATA_REQUESTS))

        response = self.preview(client, mailing, people[1])

        assert response.status_code == 404
        assert "Alice" not in response.content.decode()
        assert audited("mailing_previewed_as_person") == []


class TestFormChoices:
    def test_the_mailing_form_offers_only_the_members_campaigns_and_topics_named_with_them(self, client, campaigns):
        TopicFactory(campaign=campaigns[0], name="Job alerts")
        TopicFactory(campaign=campaigns[1], name="Kent")
        signed_in(client, member(campaigns[0], Permission.DRAFT))

        page = client.get(reverse("admin:subscriptions_mailing_add")).content.decode()

        assert "Job alerts — Civil service jobs" in page
        assert "Kent" not in page
        assert "Police recruitment" not in page

    def test_operators_see_every_topic_named_with_its_campaign(self, client, campaigns):
        TopicFactory(campaign=campaigns[0], name="General updates")
        TopicFactory(campaign=campaigns[1], name="General updates")
        signed_in(client, StaffUserFactory())

        page = client.get(reverse("admin:subscriptions_signupform_add")).content.decode()

        assert "General updates — Civil service jobs" in page
        assert "General updates — Police recruitment" in page

    def test_a_crafted_topic_of_another_campaign_is_refused_and_recorded(self, client, campaigns):
        ours, theirs = TopicFactory(campaign=campaigns[0]), TopicFactory(campaign=campaigns[1])
        drafter = member(campaigns[0], Permission.DRAFT)
        signed_in(client, drafter)
        data = {"campaign": campaigns[0].pk, "kind": "newsletter", "topics": [ours.pk, theirs.pk], "subject": "Hi",
                "body": BODY}  # fmt: skip

        response = client.post(reverse("admin:subscriptions_mailing_add"), data)

        assert response.status_code == 200
        assert not Mailing.objects.exists()
        assert [(e.actor, e.target_type, e.target_id) for e in audited("access_refused")] == [
            (drafter, "topic", theirs.pk)
        ]

    def test_a_crafted_campaign_is_refused(self, client, campaigns):
        signed_in(client, member(campaigns[0], Permission.MANAGE))
        data = {"campaign": campaigns[1].pk, "slug": "kent", "name": "Kent", "kind": "general", "position": 0}

        response = client.post(reverse("admin:subscriptions_topic_add"), data)

        assert response.status_code == 200
        assert not campaigns[1].topics.exists()
        assert len(audited("access_refused")) == 1


class TestLedgers:
    @pytest.mark.parametrize("model", ["auditevent", "consentevent", "suppression"])
    def test_not_even_an_operator_can_change_or_delete_evidence(self, client, people, model):
        row = {
            "auditevent": lambda: audit_record(actor=None, action="kept", campaign_id=people[0].campaign_id),
            "consentevent": lambda: ConsentEvent.objects.filter(subscriber=people[0]).first(),
            "suppression": lambda: Suppression.objects.create(campaign=people[0].campaign, email_hmac="f" * 64,
                                                              reason="withdrawn"),
        }[model]()  # fmt: skip
        before = type(row).objects.filter(pk=row.pk).values().get()
        signed_in(client, StaffUserFactory())

        change = client.post(reverse(f"admin:subscriptions_{model}_change", args=[row.pk]), {"details": "{}"})
        delete = client.post(reverse(f"admin:subscriptions_{model}_delete", args=[row.pk]), {"post": "yes"})
        add = client.get(reverse(f"admin:subscriptions_{model}_add"))

        assert (change.status_code, delete.status_code, add.status_code) == (403, 403, 403)
        assert type(row).objects.filter(pk=row.pk).values().get() == before


class TestRecentSignIn:
    def test_ending_a_campaign_now_asks_for_a_recent_sign_in(self, client, campaigns, people):
        signed_in(client, member(campaigns[0], Permission.MANAGE))
        url = reverse("admin:subscriptions_campaign_change", args=[campaigns[0].pk])

        response = client.post(url, {"ends_on": "2020-01-31", "erase_now": "on"})

        assert response.status_code == 302
        assert "reauthenticate" in response["Location"]
        assert Subscriber.objects.filter(pk=people[0].pk).exists()

    def test_the_erase_page_shows_who_this_is(self, client, campaigns, people):
        officer = member(campaigns[0], Permission.DATA_REQUESTS)
        signed_in(client, officer)
        reauthenticated(client, officer)

        url = reverse("admin:subscriptions_subscriber_request", args=[people[0].pk, "erase"])
        page = client.get(url).content.decode()

        assert "Job alerts" in page
        assert f"{timezone.localtime(people[0].created_at):%-d %B %Y}" in page  # the page shows local time
        assert "through sign-up page" in page


class TestAutocomplete:
    def test_topics_offered_while_typing_are_the_members_own(self, client, campaigns):
        ours = TopicFactory(campaign=campaigns[0], name="Kent")
        TopicFactory(campaign=campaigns[1], name="Kent")
        signed_in(client, member(campaigns[0], Permission.DRAFT))

        query = {"app_label": "subscriptions", "model_name": "mailing", "field_name": "topics", "term": "Kent"}
        found = client.get(reverse("admin:autocomplete"), query).json()["results"]

        assert [result["id"] for result in found] == [str(ours.pk)]

    def test_people_of_no_campaign_can_be_searched_through_it(self, client, campaigns, people):
        signed_in(client, member(campaigns[0], Permission.DATA_REQUESTS))

        for campaign in campaigns:
            query = {"app_label": "subscriptions", "model_name": "subscription", "field_name": "subscriber",
                     "term": people[0].email, "campaign__id__exact": campaign.pk}  # fmt: skip
            response = client.get(reverse("admin:autocomplete"), query)

            assert response.status_code == 404
            assert people[0].email not in response.content.decode()
        assert audited("subscriber_searched") == []


def test_an_id_that_exists_nowhere_answers_as_another_campaigns_does():
    """Otherwise a 302 for a free id against a 404 for a taken one would count other
    campaigns' sign-ups and erasures."""
    campaign = CampaignFactory()
    other = SubscriberFactory(campaign=CampaignFactory())
    client = staff_client(Client(), member(campaign, *Permission.values))
    for path in (
        reverse("admin:subscriptions_subscriber_change", args=[other.pk]),
        reverse("admin:subscriptions_subscriber_change", args=[other.pk + 1000]),
        reverse("admin:subscriptions_subscriber_history", args=[other.pk + 1000]),
        reverse("admin:subscriptions_mailing_change", args=[987654]),
    ):
        assert client.get(path).status_code == 404, path


def test_opening_a_consent_event_is_recorded_as_looking_at_personal_data():
    person = SubscriberFactory()
    event = ConsentEvent.objects.create(subscriber=person, kind="requested", source="page")
    user = member(person.campaign, Permission.DATA_REQUESTS)
    client = staff_client(Client(), user)
    assert client.get(reverse("admin:subscriptions_consentevent_change", args=[event.pk])).status_code == 200
    viewed = AuditEvent.objects.get(action="consentevent_viewed")
    assert (viewed.actor_id, viewed.campaign_id, viewed.target_id) == (user.pk, person.campaign_id, event.pk)
