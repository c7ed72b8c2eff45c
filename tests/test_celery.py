import pytest

from config.celery import app as celery_app


@pytest.fixture(autouse=True)
def _tasks_discovered():
    # What a worker or beat does at start-up: import every app's tasks module.
    celery_app.loader.import_default_modules()


def test_every_scheduled_task_exists_under_its_name():
    for entry in celery_app.conf.beat_schedule.values():
        assert entry["task"] in celery_app.tasks


def test_it_expires_pending_sign_ups_on_the_bulk_queue_every_quarter_hour():
    entry = next(
        e for e in celery_app.conf.beat_schedule.values() if e["task"] == "subscriptions.expire_pending_signups"
    )

    assert celery_app.tasks[entry["task"]].queue == "bulk"
    assert entry["schedule"].minute == {0, 15, 30, 45}
    assert entry["options"]["expires"] <= 15 * 60
