"""Start the real app under gunicorn on PostgreSQL and Redis, for benchmarks.

Each benchmark gets its own database and Redis db, created and migrated here, so a
run never touches the development or test data.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def bench_env(*, database: str, redis_db: int, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-secret-key",
        "SUPPRESSION_KEY": "bench-suppression-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": "http://127.0.0.1",
        "DATABASE_URL": f"{PG_URL}/{database}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "MAILER": "outbox",
        "VAR_DIR": str(ROOT / "var" / f"bench-{database}"),
        "STATIC_MANIFEST": "false",
        "SECURE_COOKIES": "false",
        "LOG_LEVEL": "warning",
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return result.stdout


def prepare_database(env: dict[str, str], database: str) -> None:
    """Drop and recreate the benchmark database, migrate it and load the presets."""
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    manage(env, "migrate", "--noinput")
    manage(env, "load_presets")
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int = 2) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn at {base} did not become healthy in 30 s")


def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load driver in its own process and return its figures."""
    result = subprocess.run(
        [PYTHON, "-m", "bench.load", json.dumps(spec)], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return dict(json.loads(result.stdout))


@contextmanager
def celery_workers(env: dict[str, str], processes: int, *, queue: str = "bulk") -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker (`processes` children) on one queue, stopped on exit."""
    command = [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", str(processes),
               "--loglevel", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)
