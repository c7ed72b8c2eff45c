"""Mailings and their per-person deliveries."""

from django.conf import settings
from django.db import models
from django.db.models import Q

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


class Delivery(models.Model):
    """One mailing to one person. Deleted with the person; the counts stay on Mailing."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown (worker lost mid-send)"
        SKIPPED = "skipped", "Skipped"

    # No database-level foreign keys or single-column FK indexes: fan-out inserts a
    # million rows in one statement, and PostgreSQL checks each deferred FK row by row
    # at commit (measured: 12 s of a 1M fan-out). Django still cascades deletes, erasure
    # deletes deliveries explicitly, and the composite indexes below serve both lookups.
    mailing = models.ForeignKey(
        Mailing, on_delete=models.CASCADE, related_name="deliveries", db_constraint=False, db_index=False
    )
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="deliveries", db_constraint=False, db_index=False
    )
    status = models.CharField(max_length=8, choices=Status, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    esp_message_id = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailing", "subscriber"], name="delivery_once_per_person"),
        ]
        indexes = [
            # Workers claim queued rows of one mailing; the sweeper finds stale claims.
            models.Index(fields=["mailing", "id"], condition=Q(status="queued"), name="delivery_queued"),
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="delivery_sending"),
            models.Index(fields=["esp_message_id"], condition=~Q(esp_message_id=""), name="delivery_esp_id"),
            models.Index(fields=["subscriber"], name="delivery_subscriber"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk}"
