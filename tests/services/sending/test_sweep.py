"""The sweeper: a claim a lost worker left becomes `unknown` and is never sent again, and a
mailing whose send tasks were lost is restarted, unless a worker still beats its heartbeat."""

import pytest
from django.core.cache import cache
from django.utils import timezone

from subscriptions.models import Delivery
from subscriptions.services.sending.claims import deliveries_claim
from subscriptions.services.sending.reconcile import mailing_progress
from subscriptions.services.sending.run import mailing_send_batches
from subscriptions.services.sending.send_tasks import heartbeat_key
from subscriptions.services.sending.sweep import deliveries_sweep

pytestmark = pytest.mark.django_db


def test_a_claim_older_than_its_lease_becomes_unknown_and_is_never_resent(mailing, fake_esp, settings):
    claimed = deliveries_claim(mailing=mailing, limit=2)  # then the worker is killed
    Delivery.objects.filter(pk__in=[c.delivery_id for c in claimed]).update(
        claimed_at=timezone.now() - timezone.timedelta(seconds=settings.SEND_LEASE_SECONDS + 1)
    )
    assert deliveries_sweep()["expired"] == 2
    mailing_send_batches(mailing_id=mailing.pk)
    assert {int(s.delivery_id) for s in fake_esp.sent}.isdisjoint(c.delivery_id for c in claimed)
    progress = mailing_progress(mailing_id=mailing.pk)
    assert (progress.status, progress.sent, progress.unknown, progress.remaining) == ("sent", 3, 2, 0)


def test_a_fresh_claim_is_left_alone_by_the_sweeper(mailing, fake_esp):
    deliveries_claim(mailing=mailing, limit=2)
    assert deliveries_sweep()["expired"] == 0


def test_the_sweeper_restarts_a_mailing_whose_tasks_were_lost(mailing, fake_esp):
    assert deliveries_sweep()["restarted"] == 1
    assert mailing_progress(mailing_id=mailing.pk).sent == 5


def test_the_sweeper_leaves_a_mailing_with_a_live_worker_alone(mailing, fake_esp):
    cache.set(heartbeat_key(mailing.pk), 1, timeout=60)
    assert deliveries_sweep()["restarted"] == 0
    assert fake_esp.sent == []
