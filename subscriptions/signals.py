"""Receivers for django-anymail's webhook signals; connected in SubscriptionsConfig.ready().

Anymail has authenticated the request before these run. An exception here makes
the webhook answer 500, so the provider retries later: the event's effects and its
de-duplication record roll back together.
"""

from typing import Any

from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, inbound, tracking

from subscriptions.services import webhooks


def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    webhooks.tracking_event_handle(esp_name=esp_name, event=event)


def on_inbound(sender: Any, event: AnymailInboundEvent, esp_name: str, **kwargs: Any) -> None:
    webhooks.inbound_event_handle(esp_name=esp_name, event=event)


def connect() -> None:
    tracking.connect(on_tracking, dispatch_uid="tidings.tracking")
    inbound.connect(on_inbound, dispatch_uid="tidings.inbound")
