"""Sign-up throughput and latency against gunicorn on PostgreSQL + Redis.

    python -m bench.signup [--seconds 10] [--rate 100] [--count 1000]

Measures, in one run and from a separate load process on loopback:
- the ceiling: a hello-world Django view through the same middleware, closed loop;
- sign-up POSTs (each a fresh address) closed loop: requests per second;
- sign-up POSTs at a fixed 100 requests/s: p50 and p99 latency.
The rate limits are raised for the run (every request comes from 127.0.0.1); the
confirmation task is queued to Redis as in production. Prints one JSON line.
"""

import argparse
import http.client
import json
import re
import time
from urllib.parse import quote, urlparse

from bench.server import bench_env, drive, gunicorn, prepare_database

DATABASE = "tidings_bench_signup"
FORM_PATH = "/c/police-recruitment/general/"
UNLIMITED = str(10**9)


def _form_session(base: str) -> tuple[str, str, str]:
    """GET the form once: the CSRF cookie and token, and a form stamp, reused by every POST."""
    target = urlparse(base)
    if target.hostname is None:
        raise ValueError(f"no host in {base!r}")
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    conn.request("GET", FORM_PATH)
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie", "").split(";")[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    stamp = re.search(r'name="stamp" value="([^"]+)"', page)
    if not (cookie and token and stamp):
        raise RuntimeError("could not read the sign-up form")
    return cookie, token.group(1), stamp.group(1)


def run(seconds: float, rate: float, count: int, workers: int) -> dict[str, object]:
    env = bench_env(
        database=DATABASE,
        redis_db=11,
        SIGNUP_LIMIT_PER_IP_PER_MINUTE=UNLIMITED,
        SIGNUP_LIMIT_PER_IP_PER_HOUR=UNLIMITED,
        SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR=UNLIMITED,
        CONFIRMATION_EMAILS_PER_HOUR=UNLIMITED,
        SIGNUP_MIN_FILL_SECONDS="0",
    )
    prepare_database(env, DATABASE)
    with gunicorn(env, workers=workers) as base:
        cookie, token, stamp = _form_session(base)
        body = (
            f"csrfmiddlewaretoken={quote(token)}&stamp={quote(stamp)}&email=bench-{{i}}%40example.com"
            "&first_name=Sam&consent=on&website="
        )
        post = {
            "base": base,
            "path": FORM_PATH,
            "method": "POST",
            "body": body,
            "headers": {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        }
        time.sleep(1)
        ceiling = drive(
            {"base": base, "path": "/bench/hello/", "mode": "closed", "concurrency": 8, "duration": seconds}
        )
        saturated = drive({**post, "mode": "closed", "concurrency": 8, "duration": seconds, "start": 0})
        steady = drive({**post, "mode": "rate", "rate": rate, "count": count, "start": 10**9})
    for figures in (saturated, steady):
        if set(figures["statuses"]) != {"302"}:
            raise RuntimeError(f"unexpected responses: {figures['statuses']}")
    return {
        "bench": "signup",
        "rps": saturated["rps"],
        "p50_ms": steady["p50_ms"],
        "p99_ms": steady["p99_ms"],
        "ceiling_rps": ceiling["rps"],
        "ratio": round(saturated["rps"] / ceiling["rps"], 3) if ceiling["rps"] else 0.0,
        "rate_rps": rate,
        "workers": workers,
        "saturated_p99_ms": saturated["p99_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each closed-loop run")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed arrival rate for the latency run")
    parser.add_argument("--count", type=int, default=1000, help="requests in the latency run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (for both views)")
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.rate, args.count, args.workers)))


if __name__ == "__main__":
    main()
