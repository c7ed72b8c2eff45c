import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from tests.support.auth import sign_in
from tests.support.factories import StaffUserFactory
from tests.support.staff import enrol_totp

# A fixed Monday morning: session limits and re-authentication are counted from it.
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher is slow on purpose; these tests sign in many times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def traveller():
    """The clock, frozen at START; tests move it on with traveller.shift(...)."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def signed_in(client, traveller):
    """A staff user signed in through the real pages (password, then the app's code) at START."""
    user = StaffUserFactory(username="jo")
    assert sign_in(client, "jo", enrol_totp(user)).url == reverse("staff:home")
    return user
