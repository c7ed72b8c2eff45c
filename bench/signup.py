"""Sign-up throughput and latency against gunicorn on PostgreSQL + Redis.

    python -m bench.signup [--seconds 10] [--rounds 5] [--rate 100] [--count 1000] [--workers 2]

Measures, in one run and from a separate load process on loopback:
- the ceiling: a hello-world Django view through the same middleware, closed loop;
- sign-up POSTs (each a fresh address) closed loop: requests per second; the two
  closed loops alternate in `--rounds` slices, so noise from the rest of the machine
  weighs on both;
- sign-up POSTs at a fixed 100 requests/s: p50 and p99 latency;
- then the record: a real Celery worker on the `transactional` queue records every
  accepted sign-up from the intake stream (and sends its confirmation to the outbox);
  the time from its start until the stream is empty and every sign-up has its
  consent event gives `recorded_per_s`, and `lost` counts accepted sign-ups without one.
The rate limits are raised for the run (every request comes from 127.0.0.1). Prints
one JSON line.
"""

import argparse
import http.client
import json
import re
import time
from typing import Any
from urllib.parse import quote, urlparse

from bench.server import bench_env, celery_workers, drive, gunicorn, prepare_database

DATABASE = "tidings_bench_signup"
FORM_PATH = "/c/police-recruitment/general/"
UNLIMITED = str(10**9)
RECORD_WORKERS = 2  # worker processes: one drains the stream, the other sends confirmations
RECORD_TIMEOUT_S = 600


def signup_post(base: str, *, prefix: str) -> dict[str, Any]:
    """A load spec for our page's sign-up POST, each with a fresh address
        `<prefix>-<i>@example.com`, as a browser sends it: its Origin, no cookie (the page
    sets none)."""
    body = f"stamp={quote(_form_stamp(base))}&email={prefix}-{{i}}%40example.com&first_name=Sam&consent=on&website="
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": base}
    return {"base": base, "path": FORM_PATH, "method": "POST", "body": body, "headers": headers}


def _form_stamp(base: str) -> str:
    """GET the form once for its stamp, which every POST reuses."""
    target = urlparse(base)
    if target.hostname is None:
        raise ValueError(f"no host in {base!r}")
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    conn.request("GET", FORM_PATH)
    page = conn.getresponse().read().decode()
    stamp = re.search(r'name="stamp" value="([^"]+)"', page)
    if not stamp:
        raise RuntimeError("could not read the sign-up form")
    return stamp.group(1)


def _interleaved(base: str, post: dict[str, Any], seconds: float, rounds: int) -> tuple[float, dict[str, Any]]:
    """The ceiling and the sign-up closed loop, `seconds` each, taken in `rounds`
    alternating slices, so that whatever else the machine does weighs on both alike.
    Returns the hello-world requests/s over all its slices, and the sign-up's figures:
    requests/s over all slices, its statuses, and its worst slice's p99."""
    closed = {"mode": "closed", "concurrency": 8, "duration": seconds / rounds}
    hello_requests = hello_seconds = signup_requests = signup_seconds = 0.0
    statuses: dict[str, int] = {}
    worst_p99 = 0.0
    for slice_number in range(rounds):
        hello = drive({"base": base, "path": "/bench/hello/", **closed})
        hello_requests += hello["requests"]
        hello_seconds += hello["requests"] / hello["rps"] if hello["rps"] else 0.0
        signup = drive({**post, **closed, "start": slice_number * 10**6})
        signup_requests += signup["requests"]
        signup_seconds += signup["requests"] / signup["rps"] if signup["rps"] else 0.0
        worst_p99 = max(worst_p99, signup["p99_ms"])
        for status, number in signup["statuses"].items():
            statuses[status] = statuses.get(status, 0) + number
    ceiling = round(hello_requests / hello_seconds, 1) if hello_seconds else 0.0
    rps = round(signup_requests / signup_seconds, 1) if signup_seconds else 0.0
    return ceiling, {"rps": rps, "p99_ms": worst_p99, "statuses": statuses}


def unlimited_signup_env(*, database: str, redis_db: int) -> dict[str, str]:
    """The benchmark environment with the sign-up limits raised: every request of a
    benchmark comes from 127.0.0.1, and fills the form at once."""
    return bench_env(
        database=database,
        redis_db=redis_db,
        SIGNUP_LIMIT_PER_IP_PER_MINUTE=UNLIMITED,
        SIGNUP_LIMIT_PER_IP_PER_HOUR=UNLIMITED,
        SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR=UNLIMITED,
        CONFIRMATION_EMAILS_PER_HOUR=UNLIMITED,
        SIGNUP_MIN_FILL_SECONDS="0",
    )


def run(seconds: float, rate: float, count: int, workers: int, rounds: int) -> dict[str, object]:
    env = unlimited_signup_env(database=DATABASE, redis_db=11)
    prepare_database(env, DATABASE)
    with gunicorn(env, workers=workers) as base:
        post = signup_post(base, prefix="bench")
        time.sleep(1)
        ceiling_rps, saturated = _interleaved(base, post, seconds, rounds)
        steady = drive({**post, "mode": "rate", "rate": rate, "count": count, "start": 10**9})
    for figures in (saturated, steady):
        if set(figures["statuses"]) != {"302"}:
            raise RuntimeError(f"unexpected responses: {figures['statuses']}")
    accepted = sum(figures["statuses"]["302"] for figures in (saturated, steady))
    record = _record(env, accepted)
    return {
        "bench": "signup",
        "rps": saturated["rps"],
        "p50_ms": steady["p50_ms"],
        "p99_ms": steady["p99_ms"],
        "ceiling_rps": ceiling_rps,
        "ratio": round(saturated["rps"] / ceiling_rps, 3) if ceiling_rps else 0.0,
        "rate_rps": rate,
        "workers": workers,
        "saturated_p99_ms": saturated["p99_ms"],
        **record,
    }


def _record(env: dict[str, str], accepted: int) -> dict[str, object]:
    """Start a worker and time it recording the `accepted` sign-ups the stream holds."""
    import os

    import django

    os.environ.update(env)
    django.setup()
    from subscriptions.models import ConsentEvent
    from subscriptions.services.signup import stream

    def recorded() -> int:
        return ConsentEvent.objects.filter(kind=ConsentEvent.Kind.REQUESTED).count()

    backlog = stream.backlog()
    deadline = time.monotonic() + RECORD_TIMEOUT_S
    with celery_workers(env, RECORD_WORKERS, queue="transactional"):
        # The clock starts at the first record, so the worker's start-up is not counted.
        while (first := recorded()) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        started = time.monotonic()
        while (stream.backlog() or recorded() < accepted) and time.monotonic() < deadline:
            time.sleep(0.05)
        seconds = time.monotonic() - started
    done = recorded()
    return {
        "backlog": backlog,
        "recorded_per_s": round((done - first) / seconds, 1) if seconds > 0 else 0.0,
        "lost": accepted - done,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each closed-loop run")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed arrival rate for the latency run")
    parser.add_argument("--count", type=int, default=1000, help="requests in the latency run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (for both views)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating slices of the two closed-loop runs")
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.rate, args.count, args.workers, args.rounds)))


if __name__ == "__main__":
    main()
