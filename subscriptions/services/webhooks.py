"""What email providers tell us through django-anymail: delivery events and inbound mail.

Each event is refused when stale, acted on once (keyed by the provider's event id, in
the same transaction as its effects) and matched to its delivery by the tagged
reference the message carried. Tracking events reconcile the delivery and its
mailing's counts (services/sending/reconcile.py), then:
  hard bounce       -> withdrawn (status bounced), erased, suppressed as hard_bounce
  complaint         -> withdrawn, erased, suppressed as complaint
  ESP unsubscribe   -> withdrawn, erased
  click             -> one more on that link's LinkClickCount
Inbound "unsubscribe me" mail is read by services/inbound.py. Why events are trusted
only so: docs/adr/0010-webhooks-trusted-only-when-verified.md.
"""

import datetime
import hashlib
import json
import logging
from enum import StrEnum
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from subscriptions.mail.transports.base import DELIVERY_METADATA
from subscriptions.models import Campaign, ConsentEvent, WebhookEvent
from subscriptions.services.enqueue import enqueue_on_commit
from subscriptions.services.inbound import (
    campaign_for_inbound,
    inbound_asks_to_unsubscribe,
    inbound_authenticated,
    inbound_sender,
)
from subscriptions.services.sending.reconcile import DeliveryEvent, delivery_reconcile
from subscriptions.services.stats import stat_increment
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from subscriptions.tokens import delivery_id_from_reference

logger = logging.getLogger(__name__)

WEBHOOK_EVENT_RETENTION_DAYS = 30
# Daily count of unsubscribe emails ignored because the sender was not authenticated.
INBOUND_UNVERIFIED = "inbound_ignored"


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # an event type or message we do not act on
    UNMATCHED = "unmatched"  # no delivery or subscriber it belongs to (perhaps already erased)


# Anything the ESP accepted, sent or tried again proves the message left us, which
# settles an `unknown` delivery; reconcile counts nothing more for these.
_DELIVERY_EVENTS = {
    EventType.QUEUED: DeliveryEvent.DELIVERED,
    EventType.SENT: DeliveryEvent.DELIVERED,
    EventType.DEFERRED: DeliveryEvent.DELIVERED,
    EventType.DELIVERED: DeliveryEvent.DELIVERED,
    EventType.AUTORESPONDED: DeliveryEvent.DELIVERED,
    EventType.UNSUBSCRIBED: DeliveryEvent.DELIVERED,
    EventType.BOUNCED: DeliveryEvent.BOUNCED,
    EventType.COMPLAINED: DeliveryEvent.COMPLAINED,
    EventType.REJECTED: DeliveryEvent.FAILED,
    EventType.FAILED: DeliveryEvent.FAILED,
    EventType.OPENED: DeliveryEvent.OPENED,
    EventType.CLICKED: DeliveryEvent.CLICKED,
}

# A provider refusing to send because of the address's own history is that history.
_REJECTION_MEANS = {
    RejectReason.BOUNCED: WithdrawalReason.HARD_BOUNCE,
    RejectReason.INVALID: WithdrawalReason.HARD_BOUNCE,
    RejectReason.SPAM: WithdrawalReason.COMPLAINT,
    RejectReason.UNSUBSCRIBED: WithdrawalReason.ESP_UNSUBSCRIBE,
}

# Bounce events some providers report as BOUNCED although the mailbox may recover.
_SOFT_SPARKPOST_CLASSES = {"1", "20", "21", "22", "23", "24", "70"}


def _is_soft_bounce(esp_name: str, raw: Any) -> bool:
    if not isinstance(raw, dict):
        return False
    if esp_name == "Postmark":
        return raw.get("Type") in {"SoftBounce", "Transient", "DnsError"}
    if esp_name == "Amazon SES":
        return raw.get("bounce", {}).get("bounceType") != "Permanent"
    if esp_name in {"Brevo", "SendinBlue", "Mandrill"}:
        return raw.get("event") == "soft_bounce"
    if esp_name == "MailerSend":
        return raw.get("type") == "activity.soft_bounced"
    if esp_name == "SendGrid":
        return raw.get("type") == "blocked"
    if esp_name == "SparkPost":
        events = [value for value in raw.get("msys", {}).values() if isinstance(value, dict)]
        return any(str(event.get("bounce_class")) in _SOFT_SPARKPOST_CLASSES for event in events)
    return False


def withdrawal_reason_for(*, esp_name: str, event: AnymailTrackingEvent) -> WithdrawalReason | None:
    """Whether this event means the person must stop getting mail, and why."""
    if event.event_type == EventType.BOUNCED:
        return None if _is_soft_bounce(esp_name, event.esp_event) else WithdrawalReason.HARD_BOUNCE
    if event.event_type == EventType.COMPLAINED:
        return WithdrawalReason.COMPLAINT
    if event.event_type == EventType.UNSUBSCRIBED:
        return WithdrawalReason.ESP_UNSUBSCRIBE
    if event.event_type == EventType.REJECTED:
        return _REJECTION_MEANS.get(event.reject_reason)
    return None


def _canonical(raw: Any) -> str:
    if hasattr(raw, "lists"):  # a QueryDict (form-encoded providers)
        raw = dict(raw.lists())
    return json.dumps(raw, sort_keys=True, default=str)


def event_key(*, event_id: str | None, raw: Any) -> str:
    """The provider's event id, or a digest of the whole event when it sends none
    (Postmark opens, for one): a provider's retry repeats the event byte for byte.

    The digest is keyed, because the event it stands for holds an address.
    """
    if event_id and len(event_id) <= 200:
        return event_id
    value = event_id or _canonical(raw)
    return "hmac:" + salted_hmac("tidings.webhook-event", value, algorithm="sha256").hexdigest()


class WebhookEventTooOld(AnymailWebhookValidationFailure):
    """Older (or further ahead) than WEBHOOK_MAX_AGE_SECONDS: refused with a 400.

    A 4xx, not a 5xx: SNS retries only server errors, and the providers that retry a
    4xx (Mailgun for 8 hours, SendGrid for a day) stop on their own schedule, since
    the event only grows older.
    """


def event_refuse_if_stale(*, esp_name: str, timestamp: datetime.datetime | None) -> None:
    """Raise WebhookEventTooOld for an event outside the window; None (no time given) passes."""
    if timestamp is None:
        return
    age = (timezone.now() - timestamp).total_seconds()
    if abs(age) <= settings.WEBHOOK_MAX_AGE_SECONDS:
        return
    logger.warning(
        "Webhook event from %s refused: dated %d seconds %s, outside WEBHOOK_MAX_AGE_SECONDS (%d)",
        esp_name, abs(age), "ago" if age > 0 else "ahead", settings.WEBHOOK_MAX_AGE_SECONDS,
    )  # fmt: skip
    raise WebhookEventTooOld(f"{esp_name} event outside WEBHOOK_MAX_AGE_SECONDS")


def _first_time(esp_name: str, key: str) -> bool:
    """Record the event; False if it was recorded before. Call inside a transaction."""
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(esp=esp_name[:40], event_id=key)
    except IntegrityError:
        return False
    return True


def tracking_event_handle(*, esp_name: str, event: AnymailTrackingEvent) -> Outcome:
    event_refuse_if_stale(esp_name=esp_name, timestamp=event.timestamp)
    kind = _DELIVERY_EVENTS.get(event.event_type)
    if kind is None:
        return Outcome.IGNORED
    with transaction.atomic():
        if not _first_time(esp_name, event_key(event_id=event.event_id, raw=event.esp_event)):
            return Outcome.DUPLICATE
        reconciled = delivery_reconcile(
            delivery_id=_delivery_named(esp_name, event), esp_message_id=event.message_id, event=kind
        )
        if reconciled is None:
            return Outcome.UNMATCHED
        if kind == DeliveryEvent.CLICKED and event.click_url:
            link_click_count(mailing_id=reconciled.mailing_id, url=event.click_url)
        reason = withdrawal_reason_for(esp_name=esp_name, event=event)
        if reason is not None:
            subscriber_withdraw(subscriber_id=reconciled.subscriber_id, reason=reason, source=ConsentEvent.Source.ESP)
    return Outcome.APPLIED


def _delivery_named(esp_name: str, event: AnymailTrackingEvent) -> int | None:
    """The delivery the event's reference names, if the reference is one we made."""
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    reference = metadata.get(DELIVERY_METADATA)
    delivery_id = delivery_id_from_reference(reference)
    if reference and delivery_id is None:
        logger.info("Webhook event from %s: its delivery reference does not verify; matched by message id", esp_name)
    return delivery_id


def _tracks_engagement(mailing_id: int) -> bool:
    mode = Campaign.objects.filter(mailings=mailing_id).values_list("tracking_mode", flat=True).first()
    return settings.TRACKING_ENABLED and mode not in (None, Campaign.TrackingMode.OFF)


_LINK_CLICK_UPSERT = """
INSERT INTO subscriptions_linkclickcount (mailing_id, url_hash, url, count) VALUES (%s, %s, %s, 1)
ON CONFLICT (mailing_id, url_hash) DO UPDATE SET count = subscriptions_linkclickcount.count + 1
"""


def link_click_count(*, mailing_id: int, url: str) -> None:
    """One more click on one link of one mailing, unless the campaign tracks nothing.

    Our own personal links (unsubscribe, manage) are counted under one name each,
    so no token, and no subscriber id, is ever stored.
    """
    if not _tracks_engagement(mailing_id):
        return
    url = _anonymous_link(url)[:2000]
    url_hash = hashlib.sha256(url.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(_LINK_CLICK_UPSERT, [mailing_id, url_hash, url])


def _anonymous_link(url: str) -> str:
    if not url.startswith(settings.SITE_URL + "/"):
        return url
    path = url.removeprefix(settings.SITE_URL).split("?")[0]
    for prefix, name in (("/u/", "unsubscribe link"), ("/manage/", "preferences link")):
        if path.startswith(prefix):
            return f"{settings.SITE_URL}{prefix}… ({name})"
    return url


def inbound_event_handle(*, esp_name: str, event: AnymailInboundEvent) -> Outcome:
    """An email to a campaign's inbound address asking to unsubscribe withdraws the
    sender from that campaign; they get a short acknowledgement, then are erased."""
    event_refuse_if_stale(esp_name=esp_name, timestamp=event.timestamp)
    message = event.message
    if message is None:
        return Outcome.IGNORED
    campaign = campaign_for_inbound(message)
    if campaign is None or not inbound_asks_to_unsubscribe(message):
        return Outcome.IGNORED
    if not inbound_authenticated(message):
        # Not withdrawn and not answered: the From may be a victim's address. The
        # count shows how often it happens; the log names no one.
        logger.info("Inbound unsubscribe ignored: sender not authenticated (campaign %s)", campaign.pk)
        stat_increment(campaign_id=campaign.pk, metric=INBOUND_UNVERIFIED, reason="unauthenticated")
        return Outcome.IGNORED
    sender = inbound_sender(message)
    if sender is None:
        return Outcome.IGNORED
    fallback = {"from": sender, "date": message.get("Date"), "subject": message.get("Subject")}
    key = event_key(event_id=event.event_id or message.get("Message-ID"), raw=fallback)
    with transaction.atomic():
        if not _first_time(esp_name, key):
            return Outcome.DUPLICATE
        subscriber = campaign.subscribers.filter(email__iexact=sender).only("pk").first()
        if subscriber is None:
            return Outcome.UNMATCHED
        withdrawn = subscriber_withdraw(
            subscriber_id=subscriber.pk,
            reason=WithdrawalReason.INBOUND_EMAIL,
            source=ConsentEvent.Source.EMAIL,
            # The acknowledgement needs the address, so erasure follows it (see tasks).
            erase=False,
        )
        if withdrawn:
            subscriber_pk = subscriber.pk
            enqueue_on_commit("subscriptions.acknowledge_inbound_unsubscribe", subscriber_pk)
    return Outcome.APPLIED


def webhook_events_prune(*, now: datetime.datetime | None = None) -> int:
    """Forget event ids older than any provider's retry window."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=WEBHOOK_EVENT_RETENTION_DAYS)
    deleted, _ = WebhookEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
