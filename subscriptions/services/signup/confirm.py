"""signup_confirm: the inbox owner confirms a recorded request. The subscriber becomes
active (or gains the topics, or the corrected name, the request asked for), the
confirmation is recorded once, and the welcome email is queued after commit."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from subscriptions import selectors
from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Subscriber, Subscription, Suppression, Topic
from subscriptions.services.enqueue import enqueue_on_commit
from subscriptions.services.stats import stat_increment


def signup_confirm(*, subscriber_id: int, event_id: int) -> Subscriber | None:
    """Apply a confirmed request. Returns the subscriber, or None when the request is
    unknown, was for someone else, or no longer applies. Confirming twice (even
    concurrently: the row lock serialises it) records one confirmation."""
    now = timezone.now()
    with transaction.atomic():
        subscriber = selectors.subscriber_locked(subscriber_id=subscriber_id)
        if subscriber is None or not subscriber.campaign.is_active:
            return None
        request = subscriber.consent_events.filter(pk=event_id, kind=ConsentEvent.Kind.REQUESTED).first()
        if request is None:
            return None
        if subscriber.consent_events.filter(kind=ConsentEvent.Kind.CONFIRMED, details__request_id=event_id).exists():
            return subscriber if subscriber.is_active else None
        newly_active = not subscriber.is_active
        _activate(subscriber, request, now)
        topic_ids = _open_subscriptions(subscriber, request)
        ConsentEvent.objects.create(
            subscriber=subscriber,
            kind=ConsentEvent.Kind.CONFIRMED,
            source=ConsentEvent.Source.EMAIL,
            form=request.form,
            privacy_notice=request.privacy_notice,
            topic_ids=topic_ids,
            details={"request_id": request.pk},
        )
        _count_confirmation(subscriber, topic_ids, newly_active)
        enqueue_on_commit("subscriptions.send_welcome", subscriber.pk, topic_ids)
    return subscriber


def _activate(subscriber: Subscriber, request: ConsentEvent, now: Any) -> None:
    subscriber.first_name = request.details.get("first_name", subscriber.first_name)
    subscriber.attributes = {**subscriber.attributes, **request.details.get("attributes", {})}
    if not subscriber.is_active:
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.confirmed_at = subscriber.confirmed_at or now
        subscriber.withdrawn_at = None
        subscriber.erasure_due_at = None
    subscriber.last_confirmed_at = now
    subscriber.save()
    # A fresh double opt-in is the one thing that lifts an earlier suppression.
    Suppression.objects.filter(campaign_id=subscriber.campaign_id, email_hmac=email_hmac(subscriber.email)).delete()


def _open_subscriptions(subscriber: Subscriber, request: ConsentEvent) -> list[int]:
    wanted = Topic.objects.filter(campaign_id=subscriber.campaign_id, pk__in=request.topic_ids, archived=False)
    open_ids = set(subscriber.subscriptions.filter(ended_at__isnull=True).values_list("topic_id", flat=True))
    new_ids = [topic.pk for topic in wanted if topic.pk not in open_ids]
    source = request.source if request.source in Subscription.Source.values else Subscription.Source.PAGE
    Subscription.objects.bulk_create(
        [Subscription(subscriber=subscriber, topic_id=topic_id, source=source) for topic_id in new_ids],
        ignore_conflicts=True,
    )
    return new_ids


def _count_confirmation(subscriber: Subscriber, topic_ids: list[int], newly_active: bool) -> None:
    if newly_active:
        stat_increment(campaign_id=subscriber.campaign_id, metric="confirmations")
    for topic_id in topic_ids:
        stat_increment(campaign_id=subscriber.campaign_id, topic_id=topic_id, metric="confirmations")
