"""Mailings and their per-person deliveries."""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import BooleanField, F, Q
from django.db.models.expressions import RawSQL

from subscriptions.models.campaigns import Campaign, Topic
from subscriptions.models.subscribers import Subscriber


class Mailing(models.Model):
    class Kind(models.TextChoices):
        NEWSLETTER = "newsletter", "Newsletter"
        ENTITY_ALERT = "entity_alert", "Entity alert"
        SERVICE_NOTICE = "service_notice", "Service notice (every active subscriber)"
        RECONFIRMATION = "reconfirmation", "Reconfirmation request"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="mailings")
    kind = models.CharField(max_length=16, choices=Kind, default=Kind.NEWSLETTER)
    topics = models.ManyToManyField(Topic, blank=True, related_name="mailings", help_text="The audience.")
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown. {{ first_name }} is the only personalisation.")
    status = models.CharField(max_length=10, choices=Status, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Two-person approval (Campaign.approval_threshold): who approved, as they were then.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by_name = models.CharField(max_length=200, blank=True, default="")
    approved_at = models.DateTimeField(null=True, blank=True)
    # Why the last attempt to start it failed (it went back to draft); cleared when it is
    # sent or scheduled again. Names the error, never a person.
    start_error = models.CharField(max_length=300, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Counters are kept on the row (updated per batch), so progress is one cheap read
    # while sending and survives the deletion of per-person deliveries.
    recipients_count = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    unknown_count = models.PositiveIntegerField(default=0)
    bounced_count = models.PositiveIntegerField(default=0)
    complained_count = models.PositiveIntegerField(default=0)
    opens_count = models.PositiveIntegerField(default=0)
    clicks_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "scheduled_at"], name="mailing_due"),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def remaining_count(self) -> int:
        done = self.sent_count + self.failed_count + self.skipped_count + self.unknown_count
        return max(self.recipients_count - done, 0)


# A delivery's id is its (mailing, person) pair packed in one bigint: the mailing in the
# high bits, the subscriber's id in the low PERSON_BITS. The primary key is then the
# once-per-person guarantee, a mailing's deliveries are one key range, and a fan-out
# writes a single index (measured side by side: 1,000,000 rows in 2.2-3.9 s against
# 5.0-7.9 s with a sequence-made id and separate unique, claim and per-person indexes;
# docs/benchmarks.md).
PERSON_BITS = 40  # subscriber ids below 2**40; mailing ids below 2**23 (else bigint overflows)


def delivery_id(mailing_id: int, subscriber_id: int) -> int:
    return (mailing_id << PERSON_BITS) | subscriber_id


def mailing_delivery_ids(mailing_id: int) -> tuple[int, int]:
    """The half-open range [first, end) that holds every delivery id of one mailing."""
    return mailing_id << PERSON_BITS, (mailing_id + 1) << PERSON_BITS


# The keys people's deliveries can have: one per person and mailing of their campaign
# that still holds deliveries (each mailing probed once, in the CTE; drafts and mailings
# already pruned drop out, so a campaign's long history costs nothing per person).
# `= ANY(ARRAY(...))` makes PostgreSQL look each key up; `IN (subquery)` would let it
# choose a join that reads the whole key index.
_PEOPLES_KEYS = f"""
"subscriptions_delivery"."id" = ANY(ARRAY(
  WITH live AS MATERIALIZED (
    SELECT m.id FROM subscriptions_mailing m
    WHERE m.campaign_id = %s AND EXISTS (
      SELECT 1 FROM subscriptions_delivery d
      WHERE d.id >= m.id << {PERSON_BITS} AND d.id < (m.id + 1) << {PERSON_BITS}))
  SELECT (live.id << {PERSON_BITS}) | person FROM live CROSS JOIN unnest(%s::bigint[]) AS person))
"""  # noqa: S608 - built from a constant; the ids are bound


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def of_mailing(self, mailing_id: int) -> "DeliveryQuerySet":
        first, end = mailing_delivery_ids(mailing_id)
        return self.filter(pk__gte=first, pk__lt=end)

    def of_people(self, *, campaign_id: int, subscriber_ids: Iterable[int]) -> "DeliveryQuerySet":
        """The deliveries of these people of one campaign, found by key through its
        mailings (there is no per-person index). Anyone not of the campaign has no
        delivery under its mailings' keys, so matches nothing. Top-level queries only:
        the SQL names the table itself."""
        people = list(subscriber_ids)
        if not people:
            return self.none()
        if connection.vendor != "postgresql":  # the SQLite demo: a few people, a few mailings
            mailing_ids = Mailing.objects.filter(campaign_id=campaign_id).values_list("pk", flat=True)
            return self.filter(pk__in=[delivery_id(m, person) for m in mailing_ids for person in people])
        return self.filter(RawSQL(_PEOPLES_KEYS, [campaign_id, people], BooleanField()))  # noqa: S611 - values bound


class Delivery(models.Model):
    """One mailing to one person. Deleted with the person; the counts stay on Mailing."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown (worker lost mid-send)"
        SKIPPED = "skipped", "Skipped"

    id = models.BigIntegerField(primary_key=True, editable=False)  # delivery_id(mailing, subscriber)
    # No database-level foreign keys and no index but the key: fan-out inserts a
    # million rows in one statement, and PostgreSQL would check each deferred FK row by
    # row at commit (measured: 12 s of a 1M fan-out) and update every extra index.
    # Erasure deletes a person's deliveries explicitly (DeliveryQuerySet.of_people);
    # deleting a mailing (a rare staff action) still cascades.
    mailing = models.ForeignKey(
        Mailing, on_delete=models.CASCADE, related_name="deliveries", db_constraint=False, db_index=False
    )
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.DO_NOTHING, related_name="deliveries", db_constraint=False, db_index=False
    )
    status = models.CharField(max_length=8, choices=Status, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    esp_message_id = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=200, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        constraints = [
            # The key is the pair, whoever writes the row (fan-out SQL, the ORM, a fixture).
            models.CheckConstraint(
                condition=Q(subscriber_id__gt=0, subscriber_id__lt=2**PERSON_BITS)
                & Q(id=F("mailing_id") * 2**PERSON_BITS + F("subscriber_id")),
                name="delivery_id_is_mailing_and_person",
            ),
        ]
        indexes = [
            # The sweeper finds stale claims; webhooks match the ESP's message id.
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="delivery_sending"),
            models.Index(fields=["esp_message_id"], condition=~Q(esp_message_id=""), name="delivery_esp_id"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is None:
            self.pk = delivery_id(self.mailing_id, self.subscriber_id)
            kwargs.setdefault("force_insert", True)  # a new pair: no UPDATE to try first
        super().save(*args, **kwargs)
