"""Unsubscribe by email: reading an inbound message, and acknowledging it.

Only what the sender wrote counts (the subject, and the body above any quoted
original); automatic replies and spam are ignored, and so is any message whose From
our receiving ESP (settings.INBOUND_AUTHSERV_IDS) did not authenticate. Why:
docs/adr/0011-inbound-unsubscribe-needs-an-authenticated-sender.md.
"""

import logging
import re

from anymail.inbound import AnymailInboundMessage
from django.conf import settings
from django.db.models import Q

from subscriptions.addresses import normalise_email
from subscriptions.mail import transactional
from subscriptions.models import Campaign, Subscriber

_ASKS = re.compile(r"\b(unsubscribe|unsub|opt[ -]?out|remove me)\b", re.IGNORECASE)
_JUST_STOP = re.compile(r"^\W*stop\W*$", re.IGNORECASE)
# Where the sender's own words end and the quoted message begins.
_QUOTE_START = re.compile(
    r"^(>|On .+wrote:\s*$|-{2,}\s*Original Message|_{5,}|From:\s|Sent from my )", re.IGNORECASE | re.MULTILINE
)
_BODY_LINES = 20
# One "method=result" clause of an Authentication-Results header (RFC 8601), with
# the properties that follow it, e.g. "dkim=pass header.d=example.org".
_AUTH_RESULT = re.compile(r"^\s*(dmarc|dkim|spf)\s*=\s*(\w+)(.*)$", re.IGNORECASE | re.DOTALL)
_AUTH_PROPERTY = re.compile(r"(header\.from|header\.d|header\.i|smtp\.mailfrom|smtp\.from)\s*=\s*\"?([^\s;\"]+)")

logger = logging.getLogger(__name__)


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
    return auto == "no" and not (message.get("X-Autoreply") or message.get("X-Autorespond"))


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the same domain, or one a subdomain of the other."""
    domain = domain.lower().rstrip(".").rsplit("@", 1)[-1]
    return bool(domain) and (
        domain == from_domain or domain.endswith(f".{from_domain}") or from_domain.endswith(f".{domain}")
    )


def authserv_id(header: str) -> str:
    """The authserv-id an Authentication-Results header opens with (RFC 8601 2.2):
    the first word before the first ";", without a version or a comment."""
    head = re.sub(r"\([^)]*\)", " ", header.split(";", 1)[0])
    words = head.split()
    return words[0].lower().rstrip(".") if words else ""


def _vouching_header(message: AnymailInboundMessage) -> str | None:
    """The top-most Authentication-Results header, if our receiving ESP wrote it.

    Servers add their header on top, so our ESP's, written last, is the first. A
    header below it, or one naming anyone else, arrived with the message and proves
    nothing: `totally-not-forged.example; dmarc=pass` is one line of the sender's.
    """
    trusted = {value.lower().rstrip(".") for value in settings.INBOUND_AUTHSERV_IDS}
    if not trusted:
        logger.warning("Inbound unsubscribe not trusted: INBOUND_AUTHSERV_ID is not set (docs/unsubscribe.md)")
        return None
    header = message.get("Authentication-Results")
    if not header or authserv_id(str(header)) not in trusted:
        return None
    return str(header)


def inbound_authenticated(message: AnymailInboundMessage) -> bool:
    """True only when our receiving ESP vouched for the From domain."""
    sender = inbound_sender(message)
    header = _vouching_header(message)
    if sender is None or not header:
        return False
    from_domain = sender.rsplit("@", 1)[1].lower()
    results = [found for clause in str(header).split(";")[1:] if (found := _AUTH_RESULT.match(clause))]
    if any(found.group(1).lower() == "dmarc" and found.group(2).lower() == "fail" for found in results):
        return False  # the domain's own policy says this is not them, whatever else passed
    for found in results:
        if found.group(2).lower() != "pass":
            continue
        domains = [value for _, value in _AUTH_PROPERTY.findall(found.group(3))]
        if found.group(1).lower() == "dmarc" and not domains:
            return True  # DMARC itself checks alignment with the From domain
        if any(_aligned(domain, from_domain) for domain in domains):
            return True
    return False


def inbound_asks_to_unsubscribe(message: AnymailInboundMessage) -> bool:
    """The words ask to leave; says nothing about who really sent them."""
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
    transactional.inbound_unsubscribe_acknowledgement(subscriber=subscriber)
    return True
