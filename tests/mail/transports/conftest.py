"""Fake ESPs that more than one module here sends through: anymail's real backends, pointed at a local port."""

import pytest

from tests.support.fake_mailgun import mailgun_server
from tests.support.fake_sparkpost import sparkpost_server
from tests.support.mailing_fixtures import sending_through


@pytest.fixture
def mailgun(settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "key-test", "api_url": f"http://127.0.0.1:{port}/v3"}

    with sending_through(settings, mailgun_server(), "anymail.backends.mailgun.EmailBackend", options) as fake:
        yield fake


@pytest.fixture
def sparkpost(settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "sp-test", "api_url": f"http://127.0.0.1:{port}/api/v1/"}

    with sending_through(settings, sparkpost_server(), "anymail.backends.sparkpost.EmailBackend", options) as fake:
        yield fake
