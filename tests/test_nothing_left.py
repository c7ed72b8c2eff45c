"""The "nothing left" check must find a person wherever they are, or erasure tests prove nothing."""

import base64
import json

import pytest
from django.db import connection

from subscriptions.models import ConsentEvent
from tests.support.factories import SubscriberFactory
from tests.support.nothing_left import traces_of

pytestmark = pytest.mark.django_db

EMAIL = "ottoline.varga@example.com"


def test_it_finds_an_address_in_a_text_column_whatever_its_case():
    SubscriberFactory(email=EMAIL)
    assert [trace.where for trace in traces_of(EMAIL.upper())] == ["subscriptions_subscriber.email"]


def test_it_finds_a_first_name_inside_json():
    subscriber = SubscriberFactory(first_name="Plain")
    ConsentEvent.objects.create(subscriber=subscriber, kind="requested", source="page", details={"n": "Ottoline"})
    assert [trace.where for trace in traces_of("Ottoline")] == ["subscriptions_consentevent.details"]


def test_it_finds_an_address_in_a_binary_column():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE nothing_left_probe (blob bytea)")
        cursor.execute("INSERT INTO nothing_left_probe VALUES (%s)", [f"to: {EMAIL}".encode()])
    assert [trace.where for trace in traces_of(EMAIL)] == ["nothing_left_probe.blob"]


def test_it_finds_an_address_in_every_kind_of_redis_value(redis_client):
    redis_client.set("plain", f"x{EMAIL}x")
    redis_client.hset("hash", "field", EMAIL)
    redis_client.rpush("list", "a", EMAIL)
    redis_client.sadd("set", EMAIL)
    redis_client.zadd("zset", {EMAIL: 1})
    redis_client.xadd("stream", {"who": EMAIL})
    redis_client.set(f"key:{EMAIL}", "1")
    found = {trace.where for trace in traces_of(EMAIL)}
    assert found == {f"redis:{key}" for key in ("plain", "hash", "list", "set", "zset", "stream", f"key:{EMAIL}")}


def test_it_finds_an_address_in_the_base64_body_of_a_queued_celery_task(redis_client):
    body = base64.b64encode(json.dumps([[EMAIL], {}, {}]).encode()).decode()
    redis_client.rpush("transactional", json.dumps({"body": body, "properties": {"body_encoding": "base64"}}))
    assert [trace.where for trace in traces_of(EMAIL)] == ["redis:transactional"]


def test_it_finds_nothing_when_nothing_is_held(redis_client):
    SubscriberFactory(email="someone.else@example.com")
    redis_client.set("other", "someone.else@example.com")
    assert traces_of(EMAIL, "Ottoline") == []
