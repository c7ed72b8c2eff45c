"""The audit trail page: a campaign's events only, filtered by action and date, exported as CSV."""

import csv
import datetime
import io

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from subscriptions.audit import audit_record
from subscriptions.models import AuditEvent
from tests.staff.conftest import refusals

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer_a(campaign_a, make_member):
    return make_member(campaign_a, "data_requests", name="dpo")


def trail_url(campaign, export=False):
    return reverse("staff:audit_trail_export" if export else "staff:audit_trail", args=[campaign.pk])


def record(campaign, action="subscriber_viewed", at=None, **details):
    with time_machine.travel(at or timezone.now(), tick=False):
        return audit_record(actor=None, action=action, campaign_id=campaign.pk, target_type="subscriber", **details)


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_it_lists_the_campaigns_events_newest_first(campaign_a, campaign_b, officer_a, signed_in):
    day = timezone.now() - datetime.timedelta(days=3)
    # Written newer first, so an order by insertion (pk) would list them the wrong way round.
    record(campaign_a, "newer_thing", at=day + datetime.timedelta(hours=1))
    record(campaign_a, "older_thing", at=day)
    record(campaign_b, "elsewhere_thing")
    response = signed_in(officer_a).get(trail_url(campaign_a))
    # The rows of the table, not the page text: the action filter above it names every action too.
    assert [event.action for event in response.context["page"]] == ["newer_thing", "older_thing"]
    assert "elsewhere_thing" not in response.content.decode()


def test_it_filters_by_action_and_dates(campaign_a, officer_a, signed_in):
    today = timezone.localdate()
    noon = timezone.make_aware(datetime.datetime.combine(today, datetime.time(12)))
    record(campaign_a, "exported", at=noon - datetime.timedelta(days=10))
    record(campaign_a, "exported", at=noon - datetime.timedelta(days=2))
    record(campaign_a, "erased", at=noon - datetime.timedelta(days=2))
    since = (today - datetime.timedelta(days=5)).isoformat()
    response = signed_in(officer_a).get(trail_url(campaign_a), {"action": "exported", "date_from": since})
    events = list(response.context["page"])
    assert [event.action for event in events] == ["exported"]
    assert events[0].created_at.date() >= today - datetime.timedelta(days=5)
    until = (today - datetime.timedelta(days=2)).isoformat()
    response = signed_in(officer_a).get(trail_url(campaign_a), {"date_from": until, "date_to": until})
    assert response.context["page"].paginator.count == 2


def test_it_shows_fifty_events_a_page(campaign_a, officer_a, signed_in):
    AuditEvent.objects.bulk_create(AuditEvent(action="viewed", campaign_id=campaign_a.pk) for _ in range(55))
    client = signed_in(officer_a)
    first = client.get(trail_url(campaign_a))
    assert len(first.context["page"]) == 50
    assert 'href="?page=2"' in first.content.decode()
    assert len(client.get(trail_url(campaign_a), {"page": 2}).context["page"]) == 5


def test_any_other_filter_in_the_query_string_is_refused(campaign_a, officer_a, signed_in):
    response = signed_in(officer_a).get(trail_url(campaign_a), {"details__icontains": "Alice"})
    assert response.status_code == 400


def test_a_backwards_date_range_is_an_error_on_the_page(campaign_a, officer_a, signed_in):
    response = signed_in(officer_a).get(trail_url(campaign_a), {"date_from": "2026-12-05", "date_to": "2026-12-01"})
    assert response.status_code == 400
    assert "There is a problem" in response.content.decode()


def test_the_export_holds_the_filtered_trail_and_is_itself_recorded(campaign_a, campaign_b, officer_a, signed_in):
    record(campaign_a, "erased")
    record(campaign_a, "exported")
    record(campaign_b, "erased")
    response = signed_in(officer_a).get(trail_url(campaign_a, export=True), {"action": "erased"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert [row["action"] for row in rows] == ["erased"]
    event = AuditEvent.objects.get(action="audit_trail_exported")
    assert (event.campaign_id, event.actor_id, event.details["filters"]) == (
        campaign_a.pk,
        officer_a.pk,
        {"action": "erased"},
    )


def test_the_export_defuses_cells_a_spreadsheet_would_run(campaign_a, officer_a, signed_in):
    officer_a.username = "=HYPERLINK(1)"
    officer_a.save()
    audit_record(actor=officer_a, action="viewed", campaign_id=campaign_a.pk)
    rows = csv_rows(signed_in(officer_a).get(trail_url(campaign_a, export=True), {"action": "viewed"}))
    assert rows[0]["actor"] == "'=HYPERLINK(1)"


def test_a_member_without_the_permission_gets_404(campaign_a, make_member, signed_in):
    manager = make_member(campaign_a, "team", "send")
    client = signed_in(manager)
    assert client.get(trail_url(campaign_a)).status_code == 404
    assert client.get(trail_url(campaign_a, export=True)).status_code == 404
    assert not AuditEvent.objects.filter(action="audit_trail_exported").exists()
    assert refusals(campaign_a.pk) == 2


def test_a_member_of_another_campaign_gets_404(campaign_a, campaign_b, make_member, signed_in):
    officer_b = make_member(campaign_b, "data_requests")
    client = signed_in(officer_b)
    assert client.get(trail_url(campaign_a)).status_code == 404
    assert client.get(trail_url(campaign_a, export=True)).status_code == 404
    assert not AuditEvent.objects.filter(action="audit_trail_exported").exists()
    assert refusals(campaign_a.pk) == 2


def test_the_home_page_links_to_it_for_members_with_the_permission(campaign_a, officer_a, signed_in):
    assert trail_url(campaign_a) in signed_in(officer_a).get(reverse("staff:home")).content.decode()
