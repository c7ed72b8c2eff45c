"""No link token reaches a log: not from Django's request logging, not from gunicorn's access log."""

import datetime
import logging
import sys
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse
from gunicorn.config import Config

from subscriptions.log_redaction import RedactingGunicornLogger, RedactTokens, redact_tokens
from subscriptions.models import Subscriber
from subscriptions.tokens import LinkPurpose, make_link_token
from tests.support.factories import SubscriberFactory

TOKEN = "41.Zm9vYmFyYmF6cXV4cXV1eA"


@pytest.mark.parametrize(
    "path",
    [f"/u/{TOKEN}/", f"/manage/{TOKEN}/download/", f"/confirm/{TOKEN}/", f"/email-change/{TOKEN}/",
     f"/reconfirm/{TOKEN}/?utm=x"],
)  # fmt: skip
def test_every_token_route_keeps_its_route_and_loses_its_token(path):
    redacted = redact_tokens(f"GET https://tidings.example.org{path} HTTP/1.1")
    assert TOKEN not in redacted
    assert "/…/" in redacted


def test_paths_without_tokens_are_left_alone():
    line = "GET /c/police/manage/ HTTP/1.1 /admin/subscriptions/mailing/3/change/"
    assert redact_tokens(line) == line


@pytest.mark.django_db
def test_a_404_on_a_manage_link_logs_no_token(caplog):
    person = SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    token = make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        Client().get(reverse("manage", args=[token]))
    assert "/manage/…/" in caplog.text
    assert token not in caplog.text


def test_the_console_handler_redacts_whatever_logger_writes_the_path():
    console = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactTokens) for f in h.filters))
    record = logging.LogRecord("elsewhere", logging.INFO, __file__, 1, "visited %s", (f"/u/{TOKEN}/",), None)
    assert console.filter(record)
    assert TOKEN not in console.format(record)


def test_a_traceback_quoting_a_link_is_redacted_too():
    console = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactTokens) for f in h.filters))
    try:
        raise ValueError(f"could not resolve /manage/{TOKEN}/")
    except ValueError:
        record = logging.LogRecord("elsewhere", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert console.filter(record)
    formatted = console.format(record)
    assert "ValueError: could not resolve /manage/…/" in formatted
    assert TOKEN not in formatted


def test_gunicorns_access_line_has_no_token():
    logger = RedactingGunicornLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET", "RAW_URI": f"/manage/{TOKEN}/", "PATH_INFO": f"/manage/{TOKEN}/",
        "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.1",
        "HTTP_REFERER": f"https://tidings.example.org/u/{TOKEN}/",
    }  # fmt: skip
    response = SimpleNamespace(status="404 Not Found", sent=10, headers=[])
    request = SimpleNamespace(headers=[("REFERER", f"https://tidings.example.org/u/{TOKEN}/")])
    atoms = logger.atoms(response, request, environ, datetime.timedelta(milliseconds=5))
    assert atoms["r"] == "GET /manage/…/ HTTP/1.1"
    assert TOKEN not in repr(atoms)


def test_gunicorns_error_log_has_no_token(caplog):
    logger = RedactingGunicornLogger(Config())
    logger.error_log.propagate = True
    try:
        with caplog.at_level(logging.ERROR, logger="gunicorn.error"):
            logger.error("Error handling request %s", f"/reconfirm/{TOKEN}/")
    finally:
        logger.error_log.propagate = False
    assert "/reconfirm/…/" in caplog.text
    assert TOKEN not in caplog.text


# A path is served the same however its letters are written: %6D is "m", %2F is "/".
ENCODED_PATHS = [
    f"/%6Danage/{TOKEN}/",
    f"/%6d%61nage/{TOKEN}/download/",
    f"/manage%2F{TOKEN}/",
    f"/%75/{TOKEN}/",
    f"/%2575/{TOKEN}/",
    f"/confirm/{TOKEN.replace('.', '%2E')}/",
]


@pytest.mark.parametrize("path", ENCODED_PATHS)
def test_a_percent_encoded_route_loses_its_token_in_the_real_console_handler(path):
    console = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactTokens) for f in h.filters))
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"GET %s HTTP/1.1" 404 0', (path,), None)
    assert console.filter(record)
    formatted = console.format(record)
    assert TOKEN not in formatted
    assert TOKEN.split(".")[1] not in formatted
    assert "/…/" in formatted


@pytest.mark.django_db
def test_a_percent_encoded_manage_path_is_served_and_its_access_line_has_no_token():
    person = SubscriberFactory()
    token = make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)
    path = f"/%6Danage/{token}/"
    assert Client().get(path).status_code == 200, "Django decodes the path, so the route is served"
    logger = RedactingGunicornLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET", "RAW_URI": path, "PATH_INFO": f"/manage/{token}/", "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.1",
    }  # fmt: skip
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ, datetime.timedelta(milliseconds=5))
    assert token.split(".")[1] not in repr(atoms)
    assert atoms["r"] == "GET /manage/…/ HTTP/1.1"
