"""Settings come only from the environment, and a bad value stops start-up by name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_url

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "s",
    "SUPPRESSION_KEY": "k",
    "ALLOWED_HOSTS": "example.org",
    "SITE_URL": "https://example.org",
    "DATABASE_URL": "postgres://u@db/tidings",
    "REDIS_URL": "redis://cache:6379/0",
    "MAILER": "smtp",
    "SMTP_HOST": "mail.example.org",
}


PRINT_MAILER = "import django; django.setup(); from django.conf import settings; print(settings.MAILER)"


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter, as gunicorn or a worker would."""
    clean = {key: value for key, value in os.environ.items() if key not in PRODUCTION and not key.startswith("SMTP_")}
    return subprocess.run(
        [sys.executable, "-c", PRINT_MAILER],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_settings_start_when_everything_is_set():
    result = _start(PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "smtp"


@pytest.mark.parametrize("missing", ["SECRET_KEY", "SUPPRESSION_KEY", "ALLOWED_HOSTS", "SITE_URL", "DATABASE_URL"])
def test_a_missing_required_variable_stops_start_up_naming_it(missing):
    result = _start({key: value for key, value in PRODUCTION.items() if key != missing})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "ture"),
        ("DATABASE_URL", "mysql://u@db/tidings"),
        ("REDIS_URL", "localhost:6379"),
        ("SMTP_PORT", "twenty-five"),
        ("SEND_RATE_PER_SECOND", "fast"),
        ("SIGNUP_LIMIT_PER_IP_PER_MINUTE", "0"),
    ],
)
def test_a_malformed_variable_stops_start_up_naming_it(name, value):
    result = _start({**PRODUCTION, name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_production_refuses_a_site_url_without_https():
    result = _start({**PRODUCTION, "SITE_URL": "http://example.org"})
    assert result.returncode != 0
    assert "SITE_URL must start with https://" in result.stderr


def test_a_local_production_build_over_http_says_so_with_secure_cookies_off():
    result = _start({**PRODUCTION, "SITE_URL": "http://127.0.0.1:8000", "SECURE_COOKIES": "false"})
    assert result.returncode == 0, result.stderr


def test_the_demo_needs_nothing_but_debug(tmp_path):
    result = _start({"DEBUG": "true", "VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "outbox"


class TestReaders:
    def test_booleans_accept_the_usual_words_only(self, monkeypatch):
        monkeypatch.setenv("FLAG", "Yes")
        assert env_bool("FLAG") is True
        monkeypatch.setenv("FLAG", "maybe")
        with pytest.raises(ImproperlyConfigured, match="FLAG"):
            env_bool("FLAG")

    def test_numbers_respect_their_minimum(self, monkeypatch):
        monkeypatch.setenv("COUNT", "-1")
        with pytest.raises(ImproperlyConfigured, match="at least 0"):
            env_int("COUNT", 5, minimum=0)

    def test_lists_are_comma_separated_and_trimmed(self, monkeypatch):
        monkeypatch.setenv("HOSTS", " a.example , b.example,, ")
        assert env_list("HOSTS") == ["a.example", "b.example"]

    def test_urls_must_have_an_allowed_scheme(self, monkeypatch):
        monkeypatch.setenv("URL", "ftp://example.org")
        with pytest.raises(ImproperlyConfigured, match="URL"):
            env_url("URL", schemes=("https",))
