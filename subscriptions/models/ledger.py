"""Records kept about what happened: consent evidence, staff audit, aggregate counts."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from subscriptions.models.campaigns import Campaign, PrivacyNotice, SignupForm, Topic
from subscriptions.models.subscribers import Subscriber


class ConsentEvent(models.Model):
    """Append-only evidence of consent: who, when, what they were shown, how they said it.

    Erased with the person: once consent is withdrawn and the data gone, the
    evidence is no longer needed and the aggregate counts are what remains.
    """

    class Kind(models.TextChoices):
        REQUESTED = "requested", "Requested"
        CONFIRMED = "confirmed", "Confirmed"
        CHANGED = "changed", "Changed"
        RECONFIRMED = "reconfirmed", "Reconfirmed"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Source(models.TextChoices):
        PAGE = "page", "Sign-up page"
        EMBED = "embed", "Embedded form"
        API = "api", "API"
        IMPORT = "import", "Import"
        EMAIL = "email", "Email link or reply"
        PREFERENCES = "preferences", "Preference centre"
        ESP = "esp", "Email provider event"
        ADMIN = "admin", "Staff"
        SYSTEM = "system", "Automatic"

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="consent_events")
    kind = models.CharField(max_length=12, choices=Kind)
    source = models.CharField(max_length=12, choices=Source)
    # When it happened: for a sign-up, when the request came in, which its record (a
    # moment later, in a worker) carries over.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    form = models.ForeignKey(SignupForm, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    privacy_notice = models.ForeignKey(PrivacyNotice, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Topic ids chosen (requested/confirmed/changed) or ended (withdrawn).
    topic_ids = models.JSONField(default=list, blank=True)
    # Non-personal detail, e.g. {"reason": "one_click"} or the new email's pending change.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["subscriber", "kind"], name="consent_subscriber_kind")]

    def __str__(self) -> str:
        return f"consent event {self.pk} ({self.kind})"


class AuditEvent(models.Model):
    """A staff or operator action, a sign-in, or a system action on staff's behalf.

    Append-only: no page changes or deletes one, and on PostgreSQL a trigger refuses
    UPDATE and DELETE except from the retention job (`subscriptions/audit.py`). Who acted is
    kept as they were at the time (`actor_name`), so deleting or renaming a user
    changes nothing here; `actor` and `campaign` are ids without a database
    constraint for the same reason. Holds ids, never a subscriber's personal data.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_name = models.CharField(max_length=200, blank=True, default="")
    actor_is_operator = models.BooleanField(default=False)
    action = models.CharField(max_length=40)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    target_type = models.CharField(max_length=40)
    target_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            models.Index(fields=["campaign", "-created_at"], name="audit_campaign_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.action} on {self.target_type} {self.target_id}"


class DailyStat(models.Model):
    """Aggregate count per campaign, topic (or none) and day. Survives every erasure."""

    class Metric(models.TextChoices):
        SIGNUPS = "signups", "Sign-ups requested"
        CONFIRMATIONS = "confirmations", "Confirmations"
        RECONFIRMATIONS = "reconfirmations", "Reconfirmations"
        WITHDRAWALS = "withdrawals", "Withdrawals"
        ERASURES = "erasures", "Erasures"
        SENDS = "sends", "Emails sent"
        BOUNCES = "bounces", "Bounces"
        COMPLAINTS = "complaints", "Complaints"
        LAPSES = "lapses", "Lapsed at reconfirmation"
        EXPIRED = "expired", "Unconfirmed sign-ups expired"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="daily_stats")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.CASCADE, related_name="daily_stats")
    day = models.DateField()
    metric = models.CharField(max_length=16, choices=Metric)
    # Sub-division of a metric, e.g. the withdrawal reason ("one_click", "complaint").
    reason = models.CharField(max_length=24, blank=True, default="")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "topic", "day", "metric", "reason"],
                nulls_distinct=False,
                name="daily_stat_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.metric}: {self.count}"
