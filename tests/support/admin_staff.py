"""Staff for admin tests: members of one campaign with chosen permissions, signed in
with a second factor (tests.support.staff) and, where a test needs it, freshly
re-authenticated as allauth records it."""

import time

from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY

from subscriptions.models import Membership
from tests.support.factories import StaffUserFactory
from tests.support.staff import staff_client


def member(campaign, *permissions, **fields):
    """A staff user (not an operator) in `campaign`'s team holding exactly `permissions`."""
    user = StaffUserFactory(is_superuser=False, **fields)
    Membership.objects.create(user=user, campaign=campaign, permissions=list(permissions))
    return user


def signed_in(client, user):
    staff_client(client, user)
    return client


def reauthenticated(client, user):
    """As if `user` had just typed their password again on allauth's re-authentication page."""
    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [{"method": "password", "at": time.time(), "reauthenticated": True}]
    session["account_authentication_methods_user"] = str(getattr(user, "pk", user))
    session.save()
