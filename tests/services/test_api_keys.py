"""Rotating one key from the staff pages (api_key_rotate_one)."""

import hashlib

import pytest
from django.core.exceptions import ValidationError

from subscriptions.models import ApiKey, AuditEvent
from subscriptions.services import api_keys
from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def test_rotating_a_key_keeps_its_name_and_rate_limit_and_the_old_key_for_the_overlap(settings):
    settings.API_KEY_ROTATION_OVERLAP_HOURS = 2
    campaign = CampaignFactory()
    old, old_secret = api_keys.api_key_create(campaign=campaign, name="CRM", rate_limit_per_minute=33)
    new, secret = api_keys.api_key_rotate_one(campaign=campaign, key_id=old.pk)
    assert new.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert (new.name, new.rate_limit_per_minute, new.expires_at) == ("CRM", 33, None)
    assert api_keys.api_key_find(campaign=campaign, secret=old_secret) == old
    assert api_keys.api_key_find(campaign=campaign, secret=secret) == new
    assert AuditEvent.objects.filter(action="api_key_rotated", target_id=new.pk).exists()


def test_a_key_of_another_campaign_is_not_rotated():
    key, _ = api_keys.api_key_create(campaign=CampaignFactory(), name="CRM")
    with pytest.raises(ValidationError):
        api_keys.api_key_rotate_one(campaign=CampaignFactory(), key_id=key.pk)
    assert ApiKey.objects.count() == 1


def test_a_revoked_key_is_not_rotated():
    campaign = CampaignFactory()
    key, _ = api_keys.api_key_create(campaign=campaign, name="CRM")
    api_keys.api_key_revoke(campaign_id=campaign.pk, key_id=key.pk)
    with pytest.raises(ValidationError):
        api_keys.api_key_rotate_one(campaign=campaign, key_id=key.pk)
    assert ApiKey.objects.count() == 1
