"""Behind a proxy with no trusted proxy configured, every visitor shares the proxy's
address (and its per-IP limits): the log says so, once per process."""

import logging

import pytest
from django.test import RequestFactory

from subscriptions import abuse

WARNING = "no trusted proxy is configured"


@pytest.fixture(autouse=True)
def _fresh_process():
    """Each test starts as a process that has not warned yet."""
    abuse.forwarded_warning_reset()


def _records(caplog):
    return [record for record in caplog.records if WARNING in record.getMessage()]


def test_forwarded_headers_without_a_trusted_proxy_warn_once(caplog, settings):
    settings.TRUSTED_PROXY_HEADER = ""
    caplog.set_level(logging.WARNING, logger="subscriptions.abuse")
    for client in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", headers={"X-Forwarded-For": client})
        assert abuse.client_ip(request) == "10.0.0.5", "an untrusted header is still ignored"
    (record,) = _records(caplog)
    assert record.levelno == logging.WARNING
    assert "TRUSTED_PROXY_HEADER" in record.getMessage()
    assert "192.0.2" not in record.getMessage(), "no client address in the log"


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_each_common_forwarding_header_counts(caplog, settings, header):
    settings.TRUSTED_PROXY_HEADER = ""
    caplog.set_level(logging.WARNING, logger="subscriptions.abuse")
    abuse.client_ip(RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", headers={header: "192.0.2.1"}))
    assert len(_records(caplog)) == 1


def test_no_warning_without_forwarded_headers_or_with_a_trusted_proxy(caplog, settings):
    caplog.set_level(logging.WARNING, logger="subscriptions.abuse")
    settings.TRUSTED_PROXY_HEADER = ""
    abuse.client_ip(RequestFactory().get("/", REMOTE_ADDR="10.0.0.5"))
    settings.TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", headers={"X-Forwarded-For": "192.0.2.1"})
    assert abuse.client_ip(request) == "192.0.2.1"
    assert _records(caplog) == []
