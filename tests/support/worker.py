"""A real Celery worker process for tests marked `worker`.

Use it from a test module with `from tests.support.worker import worker_process  # noqa: F401`,
mark the tests `@pytest.mark.worker`, and wait for results with `worker_process.wait_for`.
The worker is another process, so it sees only committed data: the fixture brings
`transactional_db` with it. Tasks are enqueued to the test Redis for real and run
against the test database.
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app

BASE_DIR = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    nodename: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_for(self, condition: Callable[[], object], *, message: str, timeout: float = 30.0) -> None:
        """Poll until `condition()` is truthy; on timeout fail with the worker's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"The Celery worker exited with {self.process.returncode}:\n{self.log_tail()}")
            if condition():
                return
            time.sleep(0.1)
        pytest.fail(f"Timed out after {timeout:.0f} s waiting for {message}. Worker log:\n{self.log_tail()}")


def test_database_url() -> str:
    """The URL of the database this test run created (test_<name>), for another process."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def _worker_environment() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        # No pooled connection outlives a task, so nothing lingers once the worker stops.
        "DB_CONN_MAX_AGE": "0",
    }


def _start_worker(log_path: Path, nodename: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", "transactional,bulk", "--pool=solo", "--concurrency=1",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--hostname", nodename, "--loglevel", "INFO",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=BASE_DIR, env=_worker_environment(), stdout=log, stderr=log)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # a warm shutdown: the task in hand finishes first
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture
def worker_process(transactional_db: None) -> Iterator[WorkerProcess]:
    """A `celery worker` on both queues, ready to take tasks; always stopped afterwards."""
    if not settings.REDIS_URL:
        pytest.fail("Worker tests need REDIS_URL: they enqueue to a real broker.")
    previous_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    nodename = f"test-{uuid.uuid4().hex[:8]}@tidings-tests"
    with tempfile.TemporaryDirectory(prefix="tidings-worker-") as directory:
        log_path = Path(directory) / "worker.log"
        worker = WorkerProcess(_start_worker(log_path, nodename), nodename, log_path)
        try:
            worker.wait_for(
                lambda: celery_app.control.ping(destination=[nodename], timeout=0.5),
                timeout=STARTUP_SECONDS,
                message="the Celery worker to answer a ping",
            )
            yield worker
        finally:
            _stop(worker.process)
            celery_app.conf.task_always_eager = previous_eager
