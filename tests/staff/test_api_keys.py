"""The API keys page: the secret is shown once; every key id is checked against the campaign."""

import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import ApiKey
from subscriptions.services import api_keys
from tests.staff.conftest import refusals

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_a(campaign_a, make_member):
    return make_member(campaign_a, "team", name="alice")


@pytest.fixture
def manager_b(campaign_b, make_member):
    return make_member(campaign_b, "team", name="bob")


@pytest.fixture
def key_a(campaign_a, manager_a):
    key, _ = api_keys.api_key_create(campaign=campaign_a, name="Website form", actor=manager_a)
    return key


def keys_url(campaign, action="", key=None):
    if not action:
        return reverse("staff:api_keys", args=[campaign.pk])
    args = [campaign.pk] if key is None else [campaign.pk, key.pk]
    return reverse(f"staff:api_key_{action}", args=args)


def test_a_team_manager_sees_the_campaigns_keys_and_no_other(campaign_a, campaign_b, manager_a, key_a, signed_in):
    api_keys.api_key_create(campaign=campaign_b, name="Other campaign's key")
    response = signed_in(manager_a).get(keys_url(campaign_a))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Website form" in page
    assert key_a.prefix in page
    assert "alice" in page
    assert "Other campaign" not in page


def test_creating_shows_the_secret_once(campaign_a, manager_a, signed_in):
    client = signed_in(manager_a)
    response = client.post(keys_url(campaign_a, "create"), {"name": "CRM", "rate_limit_per_minute": "120"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(campaign=campaign_a, name="CRM")
    secret = response.context["secret"]
    assert hashlib.sha256(secret.encode()).hexdigest() == key.key_hash
    assert secret in response.content.decode()
    assert key.rate_limit_per_minute == 120
    assert secret not in client.get(keys_url(campaign_a)).content.decode()


def test_a_key_without_a_name_is_refused_on_the_page(campaign_a, manager_a, signed_in):
    response = signed_in(manager_a).post(keys_url(campaign_a, "create"), {"name": "", "rate_limit_per_minute": "0"})
    assert response.status_code == 400
    assert "There is a problem" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_creating_asks_for_a_fresh_sign_in(campaign_a, manager_a, signed_in):
    response = signed_in(manager_a, reauth=False).post(keys_url(campaign_a, "create"), {"name": "CRM"})
    assert response.status_code == 302
    assert not ApiKey.objects.exists()


def test_revoking_stops_the_key(campaign_a, manager_a, key_a, signed_in):
    assert signed_in(manager_a).post(keys_url(campaign_a, "revoke", key_a)).status_code == 302
    assert not ApiKey.objects.live().filter(pk=key_a.pk).exists()


def test_revoking_asks_for_a_fresh_sign_in(campaign_a, manager_a, key_a, signed_in):
    response = signed_in(manager_a, reauth=False).post(keys_url(campaign_a, "revoke", key_a))
    assert "reauthenticate" in response["Location"]
    key_a.refresh_from_db()
    assert key_a.expires_at is None, "a stolen session cannot switch the campaign's sign-ups off"


def test_rotating_shows_a_new_secret_and_keeps_the_old_key_for_the_overlap(
    campaign_a, manager_a, key_a, signed_in, settings
):
    settings.API_KEY_ROTATION_OVERLAP_HOURS = 24
    ApiKey.objects.filter(pk=key_a.pk).update(rate_limit_per_minute=42)
    response = signed_in(manager_a).post(keys_url(campaign_a, "rotate", key_a))
    assert response.status_code == 200
    new = ApiKey.objects.get(key_hash=hashlib.sha256(response.context["secret"].encode()).hexdigest())
    assert (new.name, new.rate_limit_per_minute) == ("Website form", 42)
    key_a.refresh_from_db()
    assert ApiKey.objects.live().filter(pk=key_a.pk).exists()
    assert 23.9 < (key_a.expires_at - timezone.now()).total_seconds() / 3600 <= 24


def test_a_member_without_the_team_permission_gets_404(campaign_a, make_member, key_a, signed_in):
    drafter = make_member(campaign_a, "draft", "send")
    client = signed_in(drafter)
    assert client.get(keys_url(campaign_a)).status_code == 404
    assert client.post(keys_url(campaign_a, "revoke", key_a)).status_code == 404
    assert ApiKey.objects.live().filter(pk=key_a.pk).exists()
    assert refusals(campaign_a.pk) == 2


@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_as_key_under_bs_url_is_refused(campaign_a, campaign_b, manager_b, key_a, signed_in, action):
    response = signed_in(manager_b).post(keys_url(campaign_b, action, key_a))
    assert response.status_code == 404
    assert ApiKey.objects.filter(campaign=campaign_a).count() == 1
    assert ApiKey.objects.live().filter(pk=key_a.pk, expires_at=None).exists()
    assert refusals(campaign_b.pk) == 1


def test_as_page_is_refused_to_a_member_of_b(campaign_a, manager_b, key_a, signed_in):
    client = signed_in(manager_b)
    assert client.get(keys_url(campaign_a)).status_code == 404
    assert client.post(keys_url(campaign_a, "create"), {"name": "Mine now"}).status_code == 404
    assert ApiKey.objects.filter(campaign=campaign_a).count() == 1
    assert refusals(campaign_a.pk) == 2
