"""What email providers tell us: seen event ids, and per-link click counts.

Neither holds personal data. An event id is the provider's opaque string (or a hash
of an event that carries none), and a click count is per mailing and link, never
per person.
"""

from django.db import models

from subscriptions.models.mailings import Mailing


class WebhookEvent(models.Model):
    """One provider event already handled. Providers retry, so each is acted on once."""

    esp = models.CharField(max_length=40)
    event_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_id"], name="webhook_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.esp} event {self.event_id}"


class LinkClickCount(models.Model):
    """How often one link in one mailing was clicked, by everyone together."""

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="link_clicks")
    # A hash keys the row because URLs can outgrow any index entry.
    url_hash = models.CharField(max_length=64)
    url = models.TextField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailing", "url_hash"], name="link_click_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.count} clicks on {self.url}"
