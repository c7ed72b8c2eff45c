"""The campaign and person every webhook test acts on (tests/support/webhooks.py builds them)."""

import pytest

from tests.support.webhooks import webhook_campaign, webhook_person


@pytest.fixture
def campaign():
    return webhook_campaign()


@pytest.fixture
def person(campaign):
    return webhook_person(campaign)
