"""Unsubscribe by email: reading an inbound message, and acknowledging it.

A reply to a newsletter quotes the newsletter, and every newsletter says
"Unsubscribe" at the bottom. So only what the sender wrote counts: the subject,
and the body above the quoted original. Automatic replies, messages the provider
marked as spam, and messages whose domain failed DMARC are ignored, because acting
on them would let a forged From erase someone.
"""

import re

from anymail.inbound import AnymailInboundMessage
from django.db.models import Q
from django.urls import reverse

from subscriptions.addresses import normalise_email
from subscriptions.emails import absolute_url, build_email
from subscriptions.models import Campaign, Subscriber

_ASKS = re.compile(r"\b(unsubscribe|unsub|opt[ -]?out|remove me)\b", re.IGNORECASE)
_JUST_STOP = re.compile(r"^\W*stop\W*$", re.IGNORECASE)
# Where the sender's own words end and the quoted message begins.
_QUOTE_START = re.compile(
    r"^(>|On .+wrote:\s*$|-{2,}\s*Original Message|_{5,}|From:\s|Sent from my )", re.IGNORECASE | re.MULTILINE
)
_BODY_LINES = 20


def campaign_for_inbound(message: AnymailInboundMessage) -> Campaign | None:
    """The campaign whose inbound address received this, if it takes unsubscribe emails."""
    addresses = [message.envelope_recipient or ""]
    for header in ("To", "Cc", "Delivered-To"):
        addresses += [address.addr_spec for address in message.get_address_header(header)]
    wanted = Q()
    for address in filter(None, addresses):
        wanted |= Q(inbound_address__iexact=address.strip())
    if not wanted:
        return None
    return Campaign.objects.filter(wanted, inbound_unsubscribe=True).exclude(inbound_address="").first()


def inbound_sender(message: AnymailInboundMessage) -> str | None:
    sender = message.from_email
    if sender is None or isinstance(sender, list) or "@" not in sender.addr_spec:
        return None
    return normalise_email(sender.addr_spec)


def _own_words(body: str) -> str:
    found = _QUOTE_START.search(body)
    own = body[: found.start()] if found else body
    return "\n".join(own.strip().splitlines()[:_BODY_LINES])


def _trusted(message: AnymailInboundMessage) -> bool:
    if message.spam_detected:
        return False
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    if auto != "no" or message.get("X-Autoreply") or message.get("X-Autorespond"):
        return False
    results = " ".join(str(value) for value in message.get_all("Authentication-Results") or [])
    return "dmarc=fail" not in results.lower()


def inbound_wants_unsubscribe(message: AnymailInboundMessage) -> bool:
    if not _trusted(message):
        return False
    subject = " ".join((message.subject or "").split())
    body = _own_words(message.stripped_text or message.text or "")
    first_line = body.splitlines()[0] if body else ""
    asked = _ASKS.search(subject) or _ASKS.search(body)
    return bool(asked or _JUST_STOP.match(subject) or _JUST_STOP.match(first_line))


def inbound_unsubscribe_acknowledge(*, subscriber_id: int) -> bool:
    """Tell the sender it worked. Their data is erased straight after (see tasks)."""
    subscriber = Subscriber.objects.select_related("campaign").filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    campaign = subscriber.campaign
    context = {"signup_url": absolute_url(reverse("campaign-landing", args=[campaign.slug]))}
    build_email(template="unsubscribe_ack", campaign=campaign, to=subscriber.email, context=context).send()
    return True
