"""Helpers for the sign-up page tests: its address, a filled-in POST to it, and a clock
stopped mid-minute."""

import datetime
import re

from django.urls import reverse
from django.utils import timezone

from tests.support.signup import aged_stamp


def mid_minute() -> datetime.datetime:
    """Halfway through the current minute. With the clock stopped there, every request of
    a test counts in the same fixed window: none can fall into the next one mid-loop."""
    return timezone.now().replace(second=30, microsecond=0)


def without_nonces(content: bytes) -> bytes:
    return re.sub(rb'nonce="[^"]*"', b"", content)


def form_url(form):
    return reverse("signup", args=[form.campaign.slug, form.slug])


def form_post(client, form, headers=None, **overrides):
    """Our page's form, filled in as a person would (overrides of None leave a field out)."""
    data = {
        "email": "sam@example.com",
        "first_name": "Sam",
        "topics": ["kent-police"],
        "consent": "on",
        "stamp": aged_stamp(),
        "website": "",
    }
    data.update(overrides)
    return client.post(form_url(form), {k: v for k, v in data.items() if v is not None}, headers=headers)
