"""Helpers for the sign-up service tests: a request as the page makes it, and intake
entries appended to the stream directly."""

from django.utils import timezone

from subscriptions.models import ConsentEvent
from subscriptions.services.signup import stream
from subscriptions.services.signup.entry import SignupEntry
from subscriptions.services.signup.request import signup_request


def sign_up(form, email="new.person@example.com", topics=None, **kwargs):
    """A request without a client address, for all of the form's topics unless told."""
    signup_request(
        form=form,
        email=email,
        first_name=kwargs.pop("first_name", "Sam"),
        topics=topics if topics is not None else list(form.topics.all()),
        attributes=kwargs.pop("attributes", {}),
        source=ConsentEvent.Source.PAGE,
    )


def accept(form, email="river@example.com", first_name="River", client_ip="192.0.2.7"):
    """A request from a client address, for all of the form's topics."""
    signup_request(
        form=form,
        email=email,
        first_name=first_name,
        topics=list(form.topics.all()),
        attributes={},
        source=ConsentEvent.Source.PAGE,
        client_ip=client_ip,
    )


def entry_make(form, email="river@example.com", **changes):
    values = {
        "form_id": form.pk,
        "privacy_notice_id": None,
        "email": email,
        "first_name": "River",
        "topic_ids": list(form.topics.values_list("pk", flat=True)),
        "attributes": {},
        "source": ConsentEvent.Source.PAGE,
        "requested_at": timezone.now(),
    }
    return SignupEntry(**{**values, **changes})


def entry_append(entry_or_payload) -> None:
    """Append an entry (or any payload) as an admitted request would, under no limit."""
    payload = entry_or_payload if isinstance(entry_or_payload, str) else entry_or_payload.dumps()
    stream.append(payload, checks=[])
