"""Queueing a mailing's send tasks, and the heartbeat they keep in the cache, by which
the sweeper tells a mailing whose tasks were lost from one still being sent."""

from django.core.cache import cache

from subscriptions.services.enqueue import enqueue

# Without a heartbeat for this long, the sweeper presumes a mailing's tasks lost.
HEARTBEAT_SECONDS = 120


def enqueue_send_tasks(*, mailing_id: int, count: int, after: int = 0) -> None:
    """Queue `count` send tasks; a task handing over passes on where its claims got to."""
    heartbeat_set(mailing_id=mailing_id)
    for _ in range(count):
        enqueue("subscriptions.send_batch", mailing_id, after)


def heartbeat_key(mailing_id: int) -> str:
    return f"tidings:sending:{mailing_id}"


def heartbeat_set(*, mailing_id: int, seconds: int = HEARTBEAT_SECONDS) -> None:
    """The mailing's tasks are alive for `seconds` more (or resting that long: the sweeper waits)."""
    cache.set(heartbeat_key(mailing_id), 1, timeout=seconds)


def heartbeat_missing(mailing_id: int) -> bool:
    return cache.get(heartbeat_key(mailing_id)) is None
