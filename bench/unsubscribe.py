"""One-click unsubscribe (RFC 8058) throughput and latency against gunicorn on PostgreSQL + Redis.

    python -m bench.unsubscribe [--subscribers 20000] [--rate 100] [--count 1000] [--seconds 10]
                                [--worker-during-load] [--drain-seconds 120]

In one run, on loopback, from a separate load process:
- seeds `--subscribers` active people in the police-recruitment preset (one topic
  each) and writes each one's unsubscribe path to a file;
- starts gunicorn (2 sync workers, the Procfile's default);
- POSTs `List-Unsubscribe=One-Click` (urlencoded, no cookies) at a fixed rate
  (default 100/s, `--count` requests, each a different person): p50 and p99, measured
  from each request's scheduled start, so queueing counts;
- then as fast as answers come (8 connections, `--seconds`), each a different
  person: requests per second;
- checks every answer was 200, then starts one Celery worker on `transactional` and
  times it erasing everyone who withdrew (bounded by `--drain-seconds`).
Each withdrawal queues its erasure to Redis as in production. With
`--worker-during-load` the worker runs during the load too, on the same cores.
Prints one JSON line.
"""

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from bench.server import PG_URL, PYTHON, ROOT, bench_env, drive, gunicorn, prepare_database

DATABASE = "tidings_bench_unsubscribe"
REDIS_DB = 12
CAMPAIGN = "police-recruitment"
SEED_BATCH = 5000


def seed(count: int, paths_file: str) -> None:
    """Runs in a child process with the benchmark's settings: people, topics, paths."""
    import django

    django.setup()
    from subscriptions.addresses import email_hmac
    from subscriptions.models import Campaign, Subscriber, Subscription
    from subscriptions.tokens import LinkPurpose, make_link_token_for

    campaign = Campaign.objects.get(slug=CAMPAIGN)
    topic = campaign.topics.filter(kind="general").first() or campaign.topics.first()
    with open(paths_file, "w") as out:
        for start in range(0, count, SEED_BATCH):
            addresses = [f"unsub-{n}@example.com" for n in range(start, min(start + SEED_BATCH, count))]
            people = [
                Subscriber(campaign=campaign, email=address, email_hmac=email_hmac(address), status="active")
                for address in addresses
            ]
            Subscriber.objects.bulk_create(people, batch_size=SEED_BATCH)
            Subscription.objects.bulk_create(
                [Subscription(subscriber=person, topic=topic, source="page") for person in people],
                batch_size=SEED_BATCH,
            )
            for person in people:
                token = make_link_token_for(
                    purpose=LinkPurpose.UNSUBSCRIBE, subscriber_id=person.pk, link_key=person.link_key
                )
                out.write(f"/u/{token}/\n")


@contextmanager
def erasure_worker(env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", "transactional", "--concurrency", "1",
         "--loglevel", "warning", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


def _counts() -> tuple[int, int]:
    """(people withdrawn but not yet erased, people erased) in the benchmark campaign."""
    import psycopg

    with psycopg.connect(f"{PG_URL}/{DATABASE}") as conn:
        row = conn.execute(
            """SELECT
                 (SELECT count(*) FROM subscriptions_subscriber s JOIN subscriptions_campaign c ON c.id = s.campaign_id
                  WHERE c.slug = %s AND s.status <> 'active'),
                 (SELECT coalesce(sum(count), 0) FROM subscriptions_dailystat WHERE metric = 'erasures')""",
            [CAMPAIGN],
        ).fetchone()
    if row is None:  # a SELECT without FROM always returns its one row
        raise RuntimeError("the count query returned no row")
    return int(row[0]), int(row[1])


def run(
    *, subscribers: int, rate: float, count: int, seconds: float, drain_seconds: float, worker_during_load: bool
) -> dict[str, object]:
    env = bench_env(database=DATABASE, redis_db=REDIS_DB)
    prepare_database(env, DATABASE)
    with tempfile.TemporaryDirectory() as tmp:
        paths_file = str(Path(tmp) / "paths.txt")
        subprocess.run([PYTHON, "-m", "bench.unsubscribe", "--seed", str(subscribers), "--paths", paths_file],
                       cwd=ROOT, env=env, check=True)  # fmt: skip
        steady, saturated = _load(
            env, paths_file, rate=rate, count=count, seconds=seconds, worker_during_load=worker_during_load
        )
        # Erasure runs in the worker, in production on its own processes or hosts; by
        # default it starts only now, so the two cores measure the web side alone.
        withdrawn, erased, drain_s = _erasures_timed(env, drain_seconds)
    _check_every_answer_200(steady, saturated)
    return {
        "bench": "unsubscribe",
        "rps": saturated["rps"],
        "p50_ms": steady["p50_ms"],
        "p99_ms": steady["p99_ms"],
        "rate_rps": rate,
        "saturated_p50_ms": saturated["p50_ms"],
        "saturated_p99_ms": saturated["p99_ms"],
        "requests": steady["requests"] + saturated["requests"],
        "fresh_people": steady["requests"] + saturated["requests"] <= subscribers,
        "withdrawn": withdrawn,
        "erased": erased,
        "erasures_per_s": round(erased / drain_s, 1) if drain_s else 0.0,
        "worker_during_load": worker_during_load,
    }


def _load(
    env: dict[str, str], paths_file: str, *, rate: float, count: int, seconds: float, worker_during_load: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One-click POSTs under gunicorn: the figures at a fixed rate, then flat out."""
    with gunicorn(env) as base:
        post = {
            "base": base,
            "method": "POST",
            "paths_file": paths_file,
            "body": "List-Unsubscribe=One-Click",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        }
        drive({"base": base, "path": "/u/0.warm-up/", "method": "POST", "mode": "rate", "rate": 50, "count": 50})
        with erasure_worker(env) if worker_during_load else nullcontext():
            steady = drive({**post, "mode": "rate", "rate": rate, "count": count, "start": 0})
            saturated = drive({**post, "mode": "closed", "concurrency": 8, "duration": seconds, "start": count})
    return steady, saturated


def _erasures_timed(env: dict[str, str], drain_seconds: float) -> tuple[int, int, float]:
    """A worker erases everyone who withdrew: (withdrawn, erased, seconds it took)."""
    with erasure_worker(env):
        started = time.monotonic()
        withdrawn, erased = _drain(drain_seconds)
        drain_s = time.monotonic() - started
    return withdrawn, erased, drain_s


def _check_every_answer_200(*runs: dict[str, Any]) -> None:
    for figures in runs:
        if set(figures["statuses"]) != {"200"}:
            raise RuntimeError(f"unexpected responses: {figures['statuses']}")


def _drain(drain_seconds: float) -> tuple[int, int]:
    """Wait (bounded) until the worker has erased everyone who withdrew; (withdrawn, erased)."""
    deadline = time.monotonic() + drain_seconds
    while True:
        waiting, erased = _counts()
        if waiting == 0 or time.monotonic() > deadline:
            return waiting + erased, erased
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=20000, help="people seeded, one unsubscribe each")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed arrival rate for the latency run")
    parser.add_argument("--count", type=int, default=1000, help="requests in the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the flat-out run")
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="longest wait for erasures to finish")
    parser.add_argument(
        "--worker-during-load", action="store_true", help="run the erasure worker on the same cores during the load"
    )
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed is not None:
        seed(args.seed, args.paths)
        return
    figures = run(
        subscribers=args.subscribers, rate=args.rate, count=args.count, seconds=args.seconds,
        drain_seconds=args.drain_seconds, worker_during_load=args.worker_during_load,
    )  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
