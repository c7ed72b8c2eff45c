"""Named API keys: made, found, rotated with an overlap, revoked; every change audited."""

import datetime
import hashlib

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from subscriptions.models import ApiKey, AuditEvent
from subscriptions.services.api_keys import api_key_create, api_key_find, api_key_revoke, api_key_rotate
from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def test_a_key_is_found_only_in_its_own_campaign():
    campaign, other = CampaignFactory(), CampaignFactory()
    key, secret = api_key_create(campaign=campaign, name="CRM")
    assert api_key_find(campaign=campaign, secret=secret) == key
    assert api_key_find(campaign=other, secret=secret) is None
    assert api_key_find(campaign=campaign, secret=secret + "x") is None


def test_a_key_needs_a_name():
    with pytest.raises(ValidationError, match="name"):
        api_key_create(campaign=CampaignFactory(), name="  ")


def test_finding_a_key_notes_when_it_was_last_used():
    campaign = CampaignFactory()
    key, secret = api_key_create(campaign=campaign, name="CRM")
    api_key_find(campaign=campaign, secret=secret)
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_a_rotated_key_works_until_the_overlap_ends():
    campaign = CampaignFactory()
    old = api_key_rotate(campaign=campaign, name="CRM")
    new = api_key_rotate(campaign=campaign, name="CRM", overlap=datetime.timedelta(hours=1))
    assert api_key_find(campaign=campaign, secret=old) is not None
    assert api_key_find(campaign=campaign, secret=new) is not None
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=1, seconds=1)):
        assert api_key_find(campaign=campaign, secret=old) is None
        assert api_key_find(campaign=campaign, secret=new) is not None
    assert AuditEvent.objects.filter(action="api_key_rotated", campaign_id=campaign.pk).count() == 1


def test_a_revoked_key_stops_at_once_and_only_its_campaign_can_revoke_it():
    campaign, other = CampaignFactory(), CampaignFactory()
    key, secret = api_key_create(campaign=campaign, name="CRM")
    with pytest.raises(ValidationError):
        api_key_revoke(campaign_id=other.pk, key_id=key.pk)
    assert api_key_find(campaign=campaign, secret=secret) is not None
    api_key_revoke(campaign_id=campaign.pk, key_id=key.pk)
    assert api_key_find(campaign=campaign, secret=secret) is None
    assert list(AuditEvent.objects.values_list("action", flat=True).order_by("id")) == [
        "api_key_created",
        "api_key_revoked",
    ]


def test_only_the_hash_is_stored():
    key, secret = api_key_create(campaign=CampaignFactory(), name="CRM")
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())
