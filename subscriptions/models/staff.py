"""Campaign teams: who belongs to which campaign with which permissions, the
invitations that bring them in, and the campaign's API keys.

Staff access is decided in one place, `subscriptions.permissions`; these rows are
what it reads. Only hashes of invitation links and API keys are stored.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from subscriptions.models.campaigns import Campaign


class Permission(models.TextChoices):
    """What a team member may do in one campaign. Each is granted separately."""

    DASHBOARD = "dashboard", "See the dashboard and counts"
    DRAFT = "draft", "Draft mailings"
    SEND = "send", "Send or approve mailings"
    MANAGE = "manage", "Manage forms, topics, privacy notices and settings"
    DATA_REQUESTS = "data_requests", "Answer data requests and read the audit trail"
    TEAM = "team", "Manage the team and API keys"


class Membership(models.Model):
    """A staff user in one campaign's team."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    # Permission values (see Permission). A list keeps the demo on SQLite.
    permissions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "campaign"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.campaign}"

    def grants(self, permission: str) -> bool:
        return permission in self.permissions


class Invitation(models.Model):
    """A single-use, expiring link that makes its holder a member of one campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    permissions = models.JSONField(default=list, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation {self.pk} to {self.campaign}"


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def live(self) -> "ApiKeyQuerySet":
        """Keys that work now: not revoked, and not past a rotation's overlap."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


class ApiKey(models.Model):
    """One named key a campaign's own systems sign people up with."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # The first characters, shown so staff can tell keys apart; the rest is never stored.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    created_by_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Set when the key is revoked, or (on rotation) to the end of the overlap period.
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "name", "-created_at"]
        indexes = [models.Index(fields=["campaign", "expires_at"], name="api_key_campaign_live")]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="api_key_named"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
