import ast
from pathlib import Path

import pytest

from config.celery import app as celery_app
from subscriptions.services.enqueue import enqueue
from subscriptions.tasks import erase_subscriber, expire_pending_signups


@pytest.fixture(autouse=True)
def _tasks_discovered():
    # What a worker or beat does at start-up: import every app's tasks module.
    celery_app.loader.import_default_modules()


def test_every_scheduled_task_exists_under_its_name():
    for entry in celery_app.conf.beat_schedule.values():
        assert entry["task"] in celery_app.tasks


# The sign-up drain is scheduled too, as a safety net, but it records people's sign-ups
# and queues their confirmations: it must not wait behind a mailing's batches.
SCHEDULED_ON_TRANSACTIONAL = {"subscriptions.drain_signups"}


def test_every_scheduled_sweep_runs_on_the_bulk_queue():
    for entry in celery_app.conf.beat_schedule.values():
        if entry["task"] in SCHEDULED_ON_TRANSACTIONAL:
            continue
        assert celery_app.amqp.router.route({}, entry["task"])["queue"].name == "bulk", entry["task"]


def test_one_persons_mail_runs_on_the_transactional_queue():
    names = ["subscriptions.send_signup_confirmation", "subscriptions.erase_subscriber", "subscriptions.drain_signups"]
    for name in names:
        assert celery_app.amqp.router.route({}, name)["queue"].name == "transactional"


def test_a_lost_sign_up_drain_is_caught_up_within_a_minute():
    entry = next(e for e in celery_app.conf.beat_schedule.values() if e["task"] == "subscriptions.drain_signups")

    assert entry["schedule"] <= 60
    assert entry["options"]["expires"] <= 60


def test_it_expires_pending_sign_ups_on_the_bulk_queue_every_quarter_hour():
    entry = next(
        e for e in celery_app.conf.beat_schedule.values() if e["task"] == "subscriptions.expire_pending_signups"
    )

    assert celery_app.amqp.router.route({}, entry["task"])["queue"].name == "bulk"
    assert entry["schedule"].minute == {0, 15, 30, 45}
    assert entry["options"]["expires"] <= 15 * 60


@pytest.fixture
def enqueue_for_real():
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


@pytest.mark.usefixtures("enqueue_for_real")
def test_each_task_is_enqueued_on_its_own_queue_only(redis_client):
    expire_pending_signups.delay()
    erase_subscriber.delay(1, "one_click")
    erase_subscriber.delay(2, "one_click")

    assert (redis_client.llen("bulk"), redis_client.llen("transactional")) == (1, 2)


def _enqueued_names() -> set[str]:
    """Every task name a service passes to enqueue / enqueue_on_commit, read from the source."""
    names = set()
    for path in (Path(__file__).resolve().parents[1] / "subscriptions" / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or getattr(node.func, "id", None) not in ("enqueue", "enqueue_on_commit"):
                continue
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def test_every_task_a_service_enqueues_by_name_is_registered_under_that_name():
    names = _enqueued_names()
    assert len(names) >= 12, names  # the reader finds the calls at all
    assert names - set(celery_app.tasks) == set()


def test_a_service_that_enqueues_an_unknown_name_fails_loudly():
    with pytest.raises(celery_app.tasks.NotRegistered):
        enqueue("subscriptions.no_such_task")
