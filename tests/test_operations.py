"""The files an operator runs: Procfile, container entrypoint and health check, .env.example."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from honcho.environ import parse_procfile

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_READ = re.compile(r"""\benv_(?:str|bool|int|float|list|url|choice)\(\s*["']([A-Z][A-Z0-9_]*)["']""")


def healthcheck(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "docker" / "healthcheck.py")],
        env={"PORT": str(port), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_procfile_runs_web_a_worker_pool_per_queue_and_one_beat():
    processes = parse_procfile((BASE_DIR / "Procfile").read_text()).processes

    assert set(processes) == {"web", "worker_transactional", "worker_bulk", "beat"}
    assert processes["web"].startswith("gunicorn config.wsgi ")
    assert "-Q transactional " in processes["worker_transactional"]
    assert "-Q bulk " in processes["worker_bulk"]
    assert "celery -A config beat" in processes["beat"]


def test_the_entrypoint_is_valid_bash():
    result = subprocess.run(
        ["/bin/bash", "-n", str(BASE_DIR / "docker" / "entrypoint.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_env_example_lists_every_variable_the_project_reads():
    sources = [*BASE_DIR.glob("config/*.py"), *BASE_DIR.glob("subscriptions/**/*.py")]
    read = {name for path in sources for name in ENV_READ.findall(path.read_text())}
    example = (BASE_DIR / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))

    assert "SECRET_KEY" in read  # the pattern still finds what settings read
    assert read - listed == set()


@pytest.mark.django_db(transaction=True)
def test_the_container_health_check_passes_when_the_app_is_healthy(live_server):
    port = int(live_server.url.rsplit(":", 1)[1])

    result = healthcheck(port, ALLOWED_HOSTS="testserver")

    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "200 ok", "the liveness answer, which touches no database, cache or broker"


def test_the_container_health_check_fails_when_nothing_answers():
    result = healthcheck(9, ALLOWED_HOSTS="testserver")  # the discard port: nothing listens

    assert result.returncode == 1
