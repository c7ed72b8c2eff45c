"""Signing staff in for tests: the way through the second-factor requirement.

Every page under the staff and admin paths sends a member with no second factor to
enrolment. `staff_client(client, user)` gives the user an authenticator app the way
allauth enrols one (allauth's own API, a fresh secret) and signs them in with
force_login, so a test starts where a member who completed sign-in would be.
"""

import time

from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.conf import settings
from django.test import Client

from tests.support.factories import StaffUserFactory


def enrol_totp(user) -> str | None:
    """Give `user` an authenticator app and recovery codes; the new secret, or None if they had one."""
    if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        return None
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


def staff_client(client: Client, user=None) -> Client:
    """`client`, signed in as `user` (a new superuser if None) who has a second factor."""
    user = user or StaffUserFactory()
    enrol_totp(user)
    client.force_login(user)
    return client


def totp_code(secret: str, at: float | None = None, *, margin: float = 2.0) -> str:
    """The code an authenticator app shows for `secret` now (or at the unix time `at`).

    allauth accepts only the current window, so "now" first waits out the window's last
    `margin` seconds: the code must still be current when the server checks it. The wait is
    worked out once and slept once, so a clock frozen by time_machine (tick=False) cannot
    make it loop; a frozen clock is the server's clock too, so any code from it matches.
    """
    period = getattr(settings, "MFA_TOTP_PERIOD", 30)
    if at is None:
        remaining = period - time.time() % period
        if remaining < margin:
            time.sleep(remaining + 0.1)
        at = time.time()
    return format_hotp_value(hotp_value(secret, int(at // period)))
