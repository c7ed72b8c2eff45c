"""Shared fixtures. Tests talk to the real PostgreSQL and Redis that `make test` points at."""

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from config.celery import app as celery_app
from subscriptions import selectors


@pytest.fixture(autouse=True)
def _clean_redis():
    """Every test starts with an empty Redis database (cache, rate limits, broker)."""
    if settings.REDIS_URL:
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    cache.clear()
    # The sign-up POST may reuse a page checked within the last second; a previous test's
    # rows, rolled back since, must not be among them.
    selectors.signup_pages_forget()


@pytest.fixture(autouse=True)
def _tasks_run_inline(request):
    """Tasks run in-process unless a test is marked `worker` and starts a real worker."""
    if request.node.get_closest_marker("worker"):
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Call something as a request would, then run what it queued on commit (mail, erasure)."""

    def run(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run
