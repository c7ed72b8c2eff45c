"""ANYMAIL_* variables reach anymail as the types it expects, and a bad value stops start-up."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from anymail.backends.mailgun import EmailBackend as MailgunBackend

ROOT = Path(__file__).resolve().parents[2]

PRINT_ANYMAIL = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps({key: [type(value).__name__, value] for key, value in settings.ANYMAIL.items()}))"
)


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter, as gunicorn or a worker would."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("ANYMAIL_")}
    return subprocess.run(
        [sys.executable, "-c", PRINT_ANYMAIL],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _anymail(env: dict[str, str]) -> dict[str, list]:
    result = _start(env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_typed_values_reach_anymail_typed():
    anymail = _anymail(
        {
            "ANYMAIL_REQUESTS_TIMEOUT": "3",
            "ANYMAIL_IGNORE_UNSUPPORTED_FEATURES": "true",
            "ANYMAIL_POSTMARK_USE_BULK_API": "false",
            "ANYMAIL_SEND_DEFAULTS": '{"tags": ["tidings"]}',
            "ANYMAIL_AMAZON_SES_CLIENT_PARAMS": '{"region_name": "eu-west-2"}',
            "ANYMAIL_AMAZON_SES_DOWNLOAD_CHUNK_SIZE": "65536",
        }
    )
    assert anymail["REQUESTS_TIMEOUT"] == ["float", 3.0]
    assert anymail["IGNORE_UNSUPPORTED_FEATURES"] == ["bool", True]
    assert anymail["POSTMARK_USE_BULK_API"] == ["bool", False]
    assert anymail["SEND_DEFAULTS"] == ["dict", {"tags": ["tidings"]}]
    assert anymail["AMAZON_SES_CLIENT_PARAMS"] == ["dict", {"region_name": "eu-west-2"}]
    assert anymail["AMAZON_SES_DOWNLOAD_CHUNK_SIZE"] == ["int", 65536]


def test_secrets_and_names_stay_strings_even_when_they_look_like_numbers():
    anymail = _anymail({"ANYMAIL_MAILGUN_API_KEY": "12345", "ANYMAIL_MAILGUN_SENDER_DOMAIN": "mg.example.org"})
    assert anymail["MAILGUN_API_KEY"] == ["str", "12345"]
    assert anymail["MAILGUN_SENDER_DOMAIN"] == ["str", "mg.example.org"]


def test_a_connect_and_read_timeout_pair_becomes_the_tuple_requests_takes():
    anymail = _anymail({"ANYMAIL_REQUESTS_TIMEOUT": "3.05, 27"})
    assert anymail["REQUESTS_TIMEOUT"] == ["tuple", [3.05, 27.0]]


def test_webhook_secrets_may_be_a_list_for_rotation():
    anymail = _anymail({"ANYMAIL_WEBHOOK_SECRET": '["old:secret", "new:secret"]'})
    assert anymail["WEBHOOK_SECRET"] == ["list", ["old:secret", "new:secret"]]
    assert _anymail({"ANYMAIL_WEBHOOK_SECRET": "user:pass"})["WEBHOOK_SECRET"] == ["str", "user:pass"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ANYMAIL_REQUESTS_TIMEOUT", "fast"),
        ("ANYMAIL_IGNORE_RECIPIENT_STATUS", "maybe"),
        ("ANYMAIL_SEND_DEFAULTS", "{not json"),
        ("ANYMAIL_SEND_DEFAULTS", '["a list"]'),
        ("ANYMAIL_AMAZON_SES_SESSION_PARAMS", "profile_name=x"),
    ],
)
def test_a_bad_value_stops_start_up_naming_it(name, value):
    result = _start({name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_a_parsed_timeout_is_one_requests_accepts(settings):
    """The value the settings make is one a real request can be sent with (a string is not)."""
    from config.env import env_anymail

    settings.ANYMAIL = env_anymail({"ANYMAIL_MAILGUN_API_KEY": "key", "ANYMAIL_REQUESTS_TIMEOUT": "3"})
    backend = MailgunBackend()
    with pytest.raises(requests.ConnectionError):  # nothing listens there; the timeout itself was accepted
        requests.get("http://127.0.0.1:9/", timeout=backend.timeout)
    with pytest.raises(ValueError, match="Timeout value"):
        requests.get("http://127.0.0.1:9/", timeout="3")
