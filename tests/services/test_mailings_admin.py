import re

import pytest
from django.test import Client
from django.urls import reverse

from subscriptions.models import Mailing, Permission, Topic
from subscriptions.tokens import LinkPurpose, make_link_token
from tests.support.admin_staff import member, reauthenticated
from tests.support.factories import StaffUserFactory, SubscriberFactory
from tests.support.mailing_fixtures import BODY, make_mailing
from tests.support.staff import staff_client as signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    signed_in(client, StaffUserFactory())
    reauthenticated(client, client.session["_auth_user_id"])
    return client


def test_the_preview_shows_one_subscribers_copy_without_sending(staff_client, campaign, topics):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.DRAFT)
    person = SubscriberFactory(campaign=campaign, first_name="Priya")
    url = reverse("admin:subscriptions_mailing_preview", args=[mailing.pk])
    page = staff_client.get(url, {"subscriber": person.pk})
    assert page.status_code == 200
    assert "Hello Priya," in page.content.decode()
    html = staff_client.get(url, {"subscriber": person.pk, "part": "html"})
    assert "<strong>Kent</strong>" in html.content.decode()


def test_a_view_only_preview_hands_over_no_working_manage_link(client, campaign, topics):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.DRAFT)
    person = SubscriberFactory(campaign=campaign, first_name="Priya")
    # May see mailings and answer data requests, but neither draft nor send.
    signed_in(client, member(campaign, Permission.DASHBOARD, Permission.DATA_REQUESTS))
    url = reverse("admin:subscriptions_mailing_preview", args=[mailing.pk])
    html = client.get(url, {"subscriber": person.pk, "part": "html"}).content.decode()
    assert "Hello Priya," in html
    (token,) = set(re.findall(r"/manage/([^/]+)/", html))
    assert token != make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)
    assert Client().get(reverse("manage", args=[token])).status_code != 200


def test_the_form_refuses_a_mailing_with_no_audience(staff_client, campaign):
    data = {"campaign": campaign.pk, "kind": "newsletter", "subject": "Hi", "body": BODY}
    page = staff_client.post(reverse("admin:subscriptions_mailing_add"), data)
    assert "Choose at least one topic" in page.content.decode()
    assert not Mailing.objects.exists()


def test_send_now_from_the_list_sends_and_says_so(staff_client, campaign, topics, audience, fake_esp):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.DRAFT)
    changelist = reverse("admin:subscriptions_mailing_changelist")
    page = staff_client.post(changelist, {"action": "send_now", "_selected_action": [mailing.pk]}, follow=True)
    assert "sending has started" in page.content.decode()
    assert Mailing.objects.get(pk=mailing.pk).status in ("scheduled", "sending", "sent")


def test_a_new_public_status_offers_a_prefilled_alert(staff_client, campaign, topics):
    topic = topics[0]
    data = {"campaign": campaign.pk, "slug": topic.slug, "name": topic.name, "kind": Topic.Kind.ENTITY,
            "public_status": "Recruiting now", "position": 0}  # fmt: skip
    page = staff_client.post(reverse("admin:subscriptions_topic_change", args=[topic.pk]), data, follow=True)
    content = page.content.decode()
    assert "Write an alert to its subscribers" in content
    assert "kind=entity_alert" in content


def test_only_a_draft_can_be_deleted_and_never_in_bulk(staff_client, campaign, topics):
    draft = make_mailing(campaign, topics[:1], status=Mailing.Status.DRAFT)
    sent = make_mailing(campaign, topics[:1], status=Mailing.Status.SENT)
    delete = "admin:subscriptions_mailing_delete"

    assert staff_client.get(reverse(delete, args=[sent.pk])).status_code == 403
    assert staff_client.post(reverse(delete, args=[draft.pk]), {"post": "yes"}).status_code == 302
    assert list(Mailing.objects.values_list("pk", flat=True)) == [sent.pk]
    changelist = staff_client.get(reverse("admin:subscriptions_mailing_changelist"))
    assert 'value="delete_selected"' not in changelist.content.decode()
