"""The audit trail: written one way, never changed, deleted only by its retention job."""

import datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.utils import timezone

from subscriptions.audit import audit_record, audit_retention_purge
from subscriptions.models import AuditEvent
from subscriptions.tasks import audit_retention
from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", "alice@example.org", first_name="Alice", last_name="Ng")


def test_it_records_who_acted_as_they_were_then(alice):
    campaign = CampaignFactory()
    event = audit_record(actor=alice, action="exported", campaign_id=campaign.pk, target_type="subscriber", target_id=7)
    alice.username = "alice-renamed"
    alice.save()
    event.refresh_from_db()
    assert event.actor_name == "alice (Alice Ng)"
    assert event.actor_id == alice.pk
    assert not event.actor_is_operator


def test_deleting_a_staff_user_keeps_their_name_and_id_on_the_trail(alice):
    event = audit_record(actor=alice, action="exported")
    alice_id = alice.pk
    alice.delete()
    event.refresh_from_db()
    assert (event.actor_id, event.actor_name) == (alice_id, "alice (Alice Ng)")


def test_an_operator_is_marked_as_one():
    operator = get_user_model().objects.create_superuser("root", "root@example.org", "x" * 20)
    assert audit_record(actor=operator, action="viewed").actor_is_operator


def test_nobody_is_recorded_as_system():
    assert audit_record(actor=None, action="campaign_ended").actor_name == "system"


@pytest.mark.parametrize(
    "change",
    [lambda rows: rows.update(action="nothing happened"), lambda rows: rows.delete()],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_or_delete_an_event(alice, change):
    event = audit_record(actor=alice, action="exported")
    rows = AuditEvent.objects.filter(pk=event.pk)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        change(rows)
    event.refresh_from_db()
    assert event.action == "exported"


def test_deleting_a_campaign_leaves_its_trail_as_it_was(alice):
    campaign = CampaignFactory()
    campaign_id = campaign.pk
    event = audit_record(actor=alice, action="exported", campaign_id=campaign_id)
    before = AuditEvent.objects.filter(pk=event.pk).values().get()
    campaign.delete()
    event.refresh_from_db()
    assert event.campaign_id == campaign_id
    assert AuditEvent.objects.filter(pk=event.pk).values().get() == before


def test_the_retention_job_deletes_only_events_past_retention(alice, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    with time_machine.travel(timezone.now() - datetime.timedelta(days=31)):
        old = audit_record(actor=alice, action="exported")
    recent = audit_record(actor=alice, action="exported")
    assert audit_retention() == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not AuditEvent.objects.filter(pk=old.pk).exists()


def test_the_retention_flag_does_not_outlive_the_job(alice, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    event = audit_record(actor=alice, action="exported")
    audit_retention_purge()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
