"""People and what they hear about: subscribers, subscriptions, suppressions."""

import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from subscriptions.addresses import email_hmac
from subscriptions.models.campaigns import Campaign, Topic


def new_link_key() -> str:
    return secrets.token_hex(16)


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        ACTIVE = "active", "Active"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        LAPSED = "lapsed", "Lapsed (did not reconfirm)"
        BOUNCED = "bounced", "Bounced"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="subscribers")
    email = models.EmailField(max_length=254)
    # Keyed hash of `email`, the same value a Suppression holds, so sending can anti-join
    # suppressions in one set-based statement (SQL cannot compute the keyed hash itself).
    email_hmac = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    first_name = models.CharField(max_length=100, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status, default=Status.PENDING)
    restricted = models.BooleanField(default=False, help_text="Art. 18: kept, but receives nothing.")
    legal_hold = models.BooleanField(default=False)
    legal_hold_reason = models.CharField(max_length=300, blank=True)
    legal_hold_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set when erasure was due but a legal hold kept the data; erased when the hold lifts.
    erasure_due_at = models.DateTimeField(null=True, blank=True)
    link_key = models.CharField(max_length=32, default=new_link_key)

    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_confirmed_at = models.DateTimeField(null=True, blank=True)
    reconfirm_requested_at = models.DateTimeField(null=True, blank=True)
    reconfirm_reminded_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), "campaign", name="subscriber_email_unique_per_campaign"),
        ]
        indexes = [
            # Expiry of unconfirmed sign-ups and reconfirmation sweeps.
            models.Index(fields=["campaign", "status", "created_at"], name="subscriber_status_created"),
            models.Index(
                fields=["campaign", "last_confirmed_at"],
                condition=Q(status="active"),
                name="subscriber_active_confirmed",
            ),
            # Reconfirmation: who was asked and has not answered yet.
            models.Index(
                fields=["campaign", "reconfirm_requested_at"],
                condition=Q(status="active", reconfirm_requested_at__isnull=False),
                name="subscriber_reconfirm_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"subscriber {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Kept in step with the address on every save; code that changes `email` with
        # QuerySet.update() or bulk_create() must set `email_hmac` itself.
        self.email_hmac = email_hmac(self.email) if self.email else ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_hmac"}
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Subscription(models.Model):
    """Subscriber x topic. Append-only: ending one sets ended_at; a new start is a new row."""

    class Source(models.TextChoices):
        PAGE = "page", "Sign-up page"
        EMBED = "embed", "Embedded form"
        API = "api", "API"
        IMPORT = "import", "Import"
        PREFERENCES = "preferences", "Preference centre"
        ADMIN = "admin", "Staff"

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="subscriptions")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="subscriptions")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source)
    ended_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "topic"], condition=Q(ended_at__isnull=True), name="subscription_one_open"
            ),
        ]
        indexes = [
            # Fan-out: open subscriptions to a set of topics.
            models.Index(
                fields=["topic", "subscriber"], condition=Q(ended_at__isnull=True), name="subscription_open_topic"
            ),
        ]

    def __str__(self) -> str:
        return f"subscription {self.pk}"


class Suppression(models.Model):
    """Keyed HMAC of a normalised address: remembers 'never mail this' without the address."""

    class Reason(models.TextChoices):
        WITHDRAWN = "withdrawn", "Withdrew consent"
        COMPLAINT = "complaint", "Spam complaint"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        ERASED = "erased", "Erased on request"
        LAPSED = "lapsed", "Did not reconfirm"
        CAMPAIGN_ENDED = "campaign_ended", "Campaign ended"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="suppressions")
    email_hmac = models.CharField(max_length=64)
    reason = models.CharField(max_length=20, choices=Reason)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "email_hmac"], name="suppression_unique_per_campaign"),
        ]

    def __str__(self) -> str:
        return f"suppression {self.pk} ({self.reason})"
