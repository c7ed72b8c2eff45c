"""Campaign-end erasure of a large campaign, and what it does to sign-ups on another.

    python -m bench.purge [--size 1000000] [--rate 20]

In one run, on PostgreSQL and Redis, on loopback only:
- the campaign: `size` active subscribers (COPY, with the keyed address hash that
  sign-up stores), each following one topic and every third a second, each with a
  requested and a confirmed consent event and one delivery of a sent mailing;
- the purge: `lifecycle.campaign_end` for that campaign, timed, exactly as the
  hourly beat task calls it (batches of `erasure.ERASE_BATCH_SIZE` people);
- meanwhile: real sign-up POSTs to another campaign's form (police recruitment,
  from the presets) under gunicorn at a fixed rate, from a separate process; the
  latency of each is measured from its scheduled start, so queueing counts too.
  The same load runs for a while before the purge, for comparison.
Checks that nobody is left in the campaign and that every erasure was counted.
Prints one JSON line.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from bench.load import percentile
from bench.populate import copy_active_subscribers
from bench.server import gunicorn, prepare_database
from bench.signup import signup_post, unlimited_signup_env

if TYPE_CHECKING:
    # Only for annotations: the services import once the benchmark has set Django up.
    from subscriptions.services.lifecycle import CampaignEnd

DATABASE = "tidings_bench_purge"
REDIS_DB = 13
BASELINE_SECONDS = 10.0
WARM_UP_SECONDS = 3.0  # the first requests load code in each gunicorn worker


def populate(size: int) -> int:
    """The campaign to erase; returns its id. Everything is written set-based."""
    from django.db import connection

    from subscriptions.models import Campaign, Mailing, Topic

    campaign = Campaign.objects.create(
        slug="bench-purge", name="Bench purge", controller_name="Bench Department", sender_name="Bench",
        sender_email="updates@bench.example.org",
    )  # fmt: skip
    first = Topic.objects.create(campaign=campaign, slug="first", name="First")
    second = Topic.objects.create(campaign=campaign, slug="second", name="Second")
    mailing = Mailing.objects.create(campaign=campaign, subject="News", body="Hello", status="sent", sent_count=size)
    copy_active_subscribers(campaign, size, email=lambda i: f"purge{i}@example.com", first_name=lambda i: f"Person{i}")
    with connection.cursor() as cursor:
        params = {"campaign": campaign.pk, "first": first.pk, "second": second.pk, "mailing": mailing.pk}
        _subscriptions_insert(cursor, params)
        _consent_events_insert(cursor, params)
        _deliveries_insert(cursor, params)
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")  # the purge should not pay for writing out the load
    return campaign.pk


# Everyone in the campaign; the statements below take `params` as built by populate().
PEOPLE = "FROM subscriptions_subscriber s WHERE s.campaign_id = %(campaign)s"


def _subscriptions_insert(cursor: Any, params: dict[str, int]) -> None:
    """Everyone follows the first topic, every third person the second too."""
    cursor.execute(
        "INSERT INTO subscriptions_subscription (subscriber_id, topic_id, created_at, source, ended_reason) "
        f"SELECT s.id, %(first)s, now(), 'page', '' {PEOPLE}",
        params,
    )
    cursor.execute(
        "INSERT INTO subscriptions_subscription (subscriber_id, topic_id, created_at, source, ended_reason) "
        f"SELECT s.id, %(second)s, now(), 'page', '' {PEOPLE} AND s.id %% 3 = 0",
        params,
    )


def _consent_events_insert(cursor: Any, params: dict[str, int]) -> None:
    """A requested and a confirmed consent event per person."""
    for kind, details in (("requested", "jsonb_build_object('first_name', s.first_name)"), ("confirmed", "'{}'")):
        cursor.execute(
            "INSERT INTO subscriptions_consentevent (subscriber_id, kind, source, created_at, topic_ids, details) "
            f"SELECT s.id, '{kind}', 'page', now(), jsonb_build_array(%(first)s), {details} {PEOPLE}",
            params,
        )


def _deliveries_insert(cursor: Any, params: dict[str, int]) -> None:
    """One sent delivery of the mailing per person, keyed as the fan-out keys it."""
    from subscriptions.models.mailings import PERSON_BITS

    cursor.execute(
        "INSERT INTO subscriptions_delivery "
        "(id, mailing_id, subscriber_id, status, created_at, sent_at, attempts, esp_message_id, error) "
        f"SELECT (%(mailing)s::bigint << {PERSON_BITS}) | s.id, %(mailing)s, s.id, 'sent', now(), now(), 1, '', '' "
        f"{PEOPLE}",
        params,
    )


def _post(target: Any, spec: dict[str, Any], i: int) -> int:
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        conn.request("POST", spec["path"], body=spec["body"].replace("{i}", str(i)).encode(), headers=spec["headers"])
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def sign_ups_at_rate(spec: dict[str, Any], rate: float, stop: Any, results: Any) -> None:
    """Sign up fresh addresses at a fixed rate until told to stop; report every latency.

    Runs in its own process, so the load never shares a GIL with the server or the purge.
    """
    target = urlparse(spec["base"])
    interval = 1.0 / rate
    begin = time.time() + 0.05
    lock = threading.Lock()
    latencies: list[tuple[float, float, int]] = []  # (scheduled wall-clock time, seconds, status)
    counter = iter(range(10**9))

    def worker() -> None:
        while True:
            with lock:
                n = next(counter)
            scheduled = begin + n * interval
            delay = scheduled - time.time()
            if delay > 0:
                time.sleep(delay)
            if stop.is_set():
                return
            status = _post(target, spec, spec["start"] + n)
            with lock:
                latencies.append((scheduled, time.time() - scheduled, status))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(latencies)


class Load:
    """Sign-ups at a fixed rate in a child process, between start() and stop()."""

    def __init__(self, spec: dict[str, Any], rate: float, start: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop_event = context.Event()
        self.results = context.Queue()
        self.process = context.Process(
            target=sign_ups_at_rate, args=({**spec, "start": start}, rate, self.stop_event, self.results)
        )

    def __enter__(self) -> "Load":
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()

    def latencies(self) -> list[tuple[float, float, int]]:
        self.stop_event.set()
        found = self.results.get(timeout=120)
        self.process.join(timeout=30)
        return list(found)


def _summary(samples: list[tuple[float, float, int]]) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    for _, _, status in samples:
        statuses[status] = statuses.get(status, 0) + 1
    if set(statuses) - {302}:
        raise RuntimeError(f"unexpected sign-up responses: {statuses}")
    seconds = [latency for _, latency, _ in samples]
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 0.5) * 1000, 1),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def run(size: int, rate: float) -> dict[str, Any]:
    env = unlimited_signup_env(database=DATABASE, redis_db=REDIS_DB)
    prepare_database(env, DATABASE)
    os.environ.update(env)
    import django

    django.setup()
    import config.celery  # noqa: F401 - the confirmation tasks go to Redis, as in production
    from subscriptions.models import Campaign

    campaign_id = populate(size)
    Campaign.objects.filter(pk=campaign_id).update(ends_on="2020-01-01")
    result, erase_s, before, during_purge = _purge_under_load(env, campaign_id, rate)
    _check_nobody_left(campaign_id, size, result)
    return {
        "bench": "purge",
        "size": size,
        "erase_s": round(erase_s, 2),
        "other_campaign_signup_p99_ms": during_purge["p99_ms"],
        "other_campaign_signup_p50_ms": during_purge["p50_ms"],
        "other_campaign_signup_max_ms": during_purge["max_ms"],
        "other_campaign_signups_during": during_purge["count"],
        "baseline_signup_p99_ms": before["p99_ms"],
        "rate_rps": rate,
        "people_per_s": round(size / erase_s),
    }


def _purge_under_load(
    env: dict[str, str], campaign_id: int, rate: float
) -> tuple["CampaignEnd", float, dict[str, Any], dict[str, Any]]:
    """Sign-ups on another campaign, first alone, then while the campaign ends (timed).

    Returns the purge's result, its seconds, and the sign-ups' figures before and during it.
    """
    from subscriptions.services import lifecycle

    with gunicorn(env) as base:
        spec = signup_post(base, prefix="other")
        with Load(spec, rate, start=0) as baseline:
            time.sleep(WARM_UP_SECONDS + BASELINE_SECONDS)
            settled = time.time() - BASELINE_SECONDS
            before = _summary([s for s in baseline.latencies() if s[0] >= settled])
        with Load(spec, rate, start=10**8) as during:
            time.sleep(2)  # let the load process start and settle before the clock starts
            started, wall_start = time.perf_counter(), time.time()
            result = lifecycle.campaign_end(campaign_id=campaign_id)
            erase_s, wall_end = time.perf_counter() - started, time.time()
            during_purge = _summary([s for s in during.latencies() if wall_start <= s[0] <= wall_end])
    return result, erase_s, before, during_purge


def _check_nobody_left(campaign_id: int, size: int, result: "CampaignEnd") -> None:
    """Everyone erased, the campaign marked complete, every erasure counted."""
    from subscriptions.models import DailyStat, Subscriber

    erased_counted = sum(
        DailyStat.objects.filter(campaign_id=campaign_id, metric="erasures").values_list("count", flat=True)
    )
    left = Subscriber.objects.filter(campaign_id=campaign_id).count()
    if (result.erased, erased_counted, left, result.complete) != (size, size, 0, True):
        raise RuntimeError(f"purge incomplete: {result}, counted {erased_counted}, {left} left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="subscribers in the campaign that ends")
    parser.add_argument("--rate", type=float, default=20.0, help="sign-ups per second on the other campaign")
    args = parser.parse_args()
    print(json.dumps(run(args.size, args.rate)))


if __name__ == "__main__":
    main()
