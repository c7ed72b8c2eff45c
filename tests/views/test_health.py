"""Health answers: a cheap liveness answer for load balancers, the detailed check for operators;
and the confirmation page, which carries a token, is never cached."""

import pytest
from django.test import Client
from django.urls import reverse

from config.celery import app as celery_app
from tests.support.factories import CampaignFactory, PrivacyNoticeFactory, SignupFormFactory, TopicFactory
from tests.support.signup import aged_stamp, confirm_token_from, last_mail_to

pytestmark = pytest.mark.django_db

UNREACHABLE_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}
TOKEN = "a-long-random-health-token"
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


def test_healthz_answers_ok_without_touching_the_database_cache_or_broker(
    client, settings, monkeypatch, django_assert_num_queries
):
    settings.CACHES = UNREACHABLE_CACHE
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setitem(celery_app.conf, "broker_url", UNREACHABLE_BROKER)
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "no-store" in response["Cache-Control"]
    # The broker really is out of reach here, so a probe that touched it would have failed.
    settings.HEALTH_CHECK_TOKEN = TOKEN
    ready = client.get("/healthz/ready", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert ready["checks"]["broker"].startswith("error: ")


def test_the_detailed_check_answers_an_operator_holding_the_token(client, settings):
    settings.HEALTH_CHECK_TOKEN = TOKEN
    response = client.get("/healthz/ready", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
        "signup_backlog": 0,
    }
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer "])
def test_the_detailed_check_is_not_found_without_the_token(client, settings, django_assert_num_queries, header):
    settings.HEALTH_CHECK_TOKEN = TOKEN
    headers = {"Authorization": header} if header else {}
    with django_assert_num_queries(0):
        assert client.get("/healthz/ready", headers=headers).status_code == 404
    # The check itself exists (the token is what is missing), so this test can fail.
    assert client.get("/healthz/ready", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_a_token_setting_the_detailed_check_is_for_debug_only(client, settings):
    settings.HEALTH_CHECK_TOKEN = ""
    settings.DEBUG = False
    assert client.get("/healthz/ready", headers={"Authorization": "Bearer "}).status_code == 404
    settings.DEBUG = True
    assert client.get("/healthz/ready").status_code == 200


def test_the_detailed_check_is_unavailable_when_the_cache_is_unreachable(client, settings):
    settings.HEALTH_CHECK_TOKEN = TOKEN
    settings.CACHES = UNREACHABLE_CACHE
    response = client.get("/healthz/ready", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["cache"].startswith("error: ")
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_the_confirmation_page_is_never_cached(mailoutbox):
    campaign = CampaignFactory(slug="police")
    PrivacyNoticeFactory(campaign=campaign)
    SignupFormFactory(campaign=campaign, slug="join", topics=[TopicFactory(campaign=campaign, slug="news")])
    data = {"email": "sam@example.com", "topics": ["news"], "consent": "on", "stamp": aged_stamp()}
    Client(REMOTE_ADDR="10.9.0.1").post(reverse("signup", args=["police", "join"]), data)
    path = reverse("signup-confirm", args=[confirm_token_from(last_mail_to("sam@example.com"))])
    for response in (Client().get(path), Client().get(path[:-5] + "xxxx/")):
        assert response.status_code in (200, 404)
        assert "no-store" in response["Cache-Control"]
    assert Client().get(path).status_code == 200
