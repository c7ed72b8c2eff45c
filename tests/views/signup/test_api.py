"""The JSON sign-up API (views/api.py, docs/api.md): keys, per-key limits, bad input."""

import pytest
import time_machine
from django.urls import reverse

from subscriptions.models import ApiKey, ConsentEvent, Subscriber
from subscriptions.services.api_keys import api_key_create, api_key_revoke, api_key_rotate
from tests.support.factories import CampaignFactory
from tests.views.signup.pages import mid_minute

# Real transactions, so the confirmation task is queued on commit as in production.
pytestmark = pytest.mark.django_db(transaction=True)


class TestApi:
    def _call(self, client, campaign, key, body, content_type="application/json"):
        return client.post(
            reverse("api-signup", args=[campaign.slug]),
            data=body,
            content_type=content_type,
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )

    def test_a_valid_request_is_accepted_and_mails_a_confirmation(self, client, form, mailoutbox):
        key = api_key_rotate(campaign=form.campaign)
        body = {"email": "api@example.com", "topics": ["essex-police"], "form": "forces", "consent": True}
        response = self._call(client, form.campaign, key, body)
        assert response.status_code == 202
        assert response.json() == {"status": "accepted"}
        assert Subscriber.objects.get().consent_events.get().source == ConsentEvent.Source.API
        assert len(mailoutbox) == 1

    def test_a_wrong_key_is_refused(self, client, form):
        api_key_rotate(campaign=form.campaign)
        response = self._call(client, form.campaign, "tid_wrong", {"email": "x@example.com", "consent": True})
        assert response.status_code == 401
        assert not Subscriber.objects.exists()

    def test_each_key_has_its_own_rate_limit(self, client, form):
        _, crm_secret = api_key_create(campaign=form.campaign, name="CRM", rate_limit_per_minute=1)
        _, site_secret = api_key_create(campaign=form.campaign, name="Website", rate_limit_per_minute=5)
        body = {"email": "a@example.com", "topics": ["essex-police"], "form": "forces", "consent": True}
        with time_machine.travel(mid_minute(), tick=False):
            assert self._call(client, form.campaign, crm_secret, body).status_code == 202
            limited = self._call(client, form.campaign, crm_secret, {**body, "email": "b@example.com"})
            assert limited.status_code == 429
            site = self._call(client, form.campaign, site_secret, {**body, "email": "c@example.com"})
            assert site.status_code == 202
        assert not Subscriber.objects.filter(email="b@example.com").exists()

    def test_a_revoked_key_is_refused(self, client, form):
        key, secret = api_key_create(campaign=form.campaign, name="CRM")
        api_key_revoke(campaign_id=form.campaign.pk, key_id=key.pk)
        response = self._call(client, form.campaign, secret, {"email": "x@example.com", "consent": True})
        assert response.status_code == 401

    def test_a_key_of_another_campaign_is_refused(self, client, form):
        _, secret = api_key_create(campaign=CampaignFactory(), name="CRM")
        response = self._call(client, form.campaign, secret, {"email": "x@example.com", "consent": True})
        assert response.status_code == 401

    def test_the_key_is_stored_hashed(self, form):
        key = api_key_rotate(campaign=form.campaign)
        stored = ApiKey.objects.get(campaign=form.campaign)
        assert key not in stored.key_hash
        assert stored.prefix == key[:10]

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"email": "bad", "topics": ["kent-police"], "consent": True}, 400, "email"),
            ({"email": "a@example.com", "topics": ["kent-police"]}, 400, "consent"),
            ({"email": "a@example.com", "topics": ["nope"], "consent": True}, 400, "topics"),
            ({"email": "a@example.com", "topics": ["kent-police"], "consent": True, "attributes": {"x": 1}}, 400, None),
            ({"email": "a@example.com", "consent": True, "admin": True}, 400, None),
        ],
    )
    def test_bad_input_is_refused_with_a_clear_error(self, client, form, body, status, field):
        key = api_key_rotate(campaign=form.campaign)
        response = self._call(client, form.campaign, key, body)
        assert response.status_code == status
        assert response.json()["error"]
        if field:
            assert field in response.json()["fields"]
        assert not Subscriber.objects.exists()

    def test_non_json_is_refused(self, client, form):
        key = api_key_rotate(campaign=form.campaign)
        assert self._call(client, form.campaign, key, "email=a@example.com", "text/plain").status_code == 415
        assert self._call(client, form.campaign, key, "{not json").status_code == 400
