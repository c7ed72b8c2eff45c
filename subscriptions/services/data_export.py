"""Everything held about one person, as plain data: the "download my data" file.

It holds the person's own rows only (subscriber, every subscription open or ended,
every consent event, every delivery) and names the mailings, topics, forms and
notices they point at, never anything about anyone else. Secrets that are ours,
not theirs (the link key, the address hash), are left out.
"""

import datetime
from typing import Any

from django.utils import timezone

from subscriptions.models import ConsentEvent, Delivery, Subscriber, Subscription, Topic

FORMAT_VERSION = 1


def _when(value: datetime.datetime | datetime.date | None) -> str | None:
    return value.isoformat() if value else None


def subscriber_data_export(*, subscriber_id: int) -> dict[str, Any] | None:
    """The export for one person, or None when they no longer exist."""
    subscriber = Subscriber.objects.select_related("campaign").filter(pk=subscriber_id).first()
    if subscriber is None:
        return None
    campaign = subscriber.campaign
    topic_names = dict(Topic.objects.filter(campaign=campaign).values_list("pk", "name"))
    return {
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "controller": {
            "name": campaign.controller_name,
            "address": campaign.controller_address,
            "contact_email": campaign.contact_email,
            "dpo_email": campaign.dpo_email,
        },
        "campaign": {"name": campaign.name, "ends_on": _when(campaign.ends_on)},
        "subscriber": _subscriber(subscriber),
        "subscriptions": [_subscription(row, topic_names) for row in _subscriptions(subscriber)],
        "consent_events": [_consent_event(event, topic_names) for event in _consent_events(subscriber)],
        "deliveries": [_delivery(delivery) for delivery in _deliveries(subscriber)],
    }


def _subscriber(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "first_name": subscriber.first_name,
        "attributes": subscriber.attributes,
        "status": subscriber.status,
        "restricted": subscriber.restricted,
        "created_at": _when(subscriber.created_at),
        "confirmed_at": _when(subscriber.confirmed_at),
        "last_confirmed_at": _when(subscriber.last_confirmed_at),
        "reconfirm_requested_at": _when(subscriber.reconfirm_requested_at),
        "withdrawn_at": _when(subscriber.withdrawn_at),
    }


def _subscriptions(subscriber: Subscriber) -> list[Subscription]:
    return list(Subscription.objects.filter(subscriber=subscriber).order_by("created_at", "pk"))


def _subscription(row: Subscription, topic_names: dict[int, str]) -> dict[str, Any]:
    return {
        "topic": topic_names.get(row.topic_id, ""),
        "started_at": _when(row.created_at),
        "ended_at": _when(row.ended_at),
        "source": row.source,
        "ended_reason": row.ended_reason,
    }


def _consent_events(subscriber: Subscriber) -> list[ConsentEvent]:
    return list(
        ConsentEvent.objects.filter(subscriber=subscriber)
        .select_related("form", "privacy_notice")
        .order_by("created_at", "pk")
    )


def _consent_event(event: ConsentEvent, topic_names: dict[int, str]) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "source": event.source,
        "at": _when(event.created_at),
        "form": {"title": event.form.title, "version": event.form.version} if event.form else None,
        "consent_wording": event.form.consent_wording if event.form else None,
        "privacy_notice": (
            {"version": event.privacy_notice.version, "url": event.privacy_notice.url} if event.privacy_notice else None
        ),
        "topics": [topic_names.get(pk, "") for pk in event.topic_ids],
        "details": event.details,
    }


def _deliveries(subscriber: Subscriber) -> list[Delivery]:
    mine = Delivery.objects.of_people(campaign_id=subscriber.campaign_id, subscriber_ids=[subscriber.pk])
    return list(mine.select_related("mailing").order_by("created_at", "pk"))


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "mailing_subject": delivery.mailing.subject,
        "status": delivery.status,
        "queued_at": _when(delivery.created_at),
        "sent_at": _when(delivery.sent_at),
    }
