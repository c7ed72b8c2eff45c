"""Helpers for driving the double opt-in as a person would."""

import re
import time

from django.core import mail
from django.core.mail import EmailMessage

from subscriptions import abuse

CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]+/confirm/([^/\s\"'<>]+)/")
MANAGE_LINK = re.compile(r"https?://[^\s\"'<>]+/manage/([^/\s\"'<>]+)/")


def last_mail_to(address: str) -> EmailMessage:
    matches = [m for m in mail.outbox if address in m.to]
    assert matches, f"no mail to {address}; outbox has {[m.to for m in mail.outbox]}"
    return matches[-1]


def confirm_token_from(message: EmailMessage) -> str:
    found = CONFIRM_LINK.search(str(message.body))
    assert found, f"no confirmation link in:\n{message.body}"
    return found.group(1)


def aged_stamp(seconds: int = 30) -> str:
    """A form stamp issued `seconds` ago, as if a person took that long to fill the form."""
    return abuse.form_stamp(issued=int(time.time()) - seconds)
