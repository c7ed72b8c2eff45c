from subscriptions.models.campaigns import Campaign, PrivacyNotice, SignupForm, Topic
from subscriptions.models.ledger import AuditEvent, ConsentEvent, DailyStat
from subscriptions.models.mailings import Delivery, Mailing
from subscriptions.models.subscribers import Subscriber, Subscription, Suppression
from subscriptions.models.webhooks import LinkClickCount, WebhookEvent

__all__ = [
    "AuditEvent",
    "Campaign",
    "ConsentEvent",
    "DailyStat",
    "Delivery",
    "LinkClickCount",
    "Mailing",
    "PrivacyNotice",
    "SignupForm",
    "Subscriber",
    "Subscription",
    "Suppression",
    "Topic",
    "WebhookEvent",
]
