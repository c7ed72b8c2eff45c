from subscriptions.models.campaigns import Campaign, PrivacyNotice, SignupForm, Topic
from subscriptions.models.ledger import AuditEvent, ConsentEvent, DailyStat
from subscriptions.models.mailings import Delivery, Mailing
from subscriptions.models.staff import ApiKey, Invitation, Membership, Permission
from subscriptions.models.subscribers import Subscriber, Subscription, Suppression
from subscriptions.models.webhooks import LinkClickCount, WebhookEvent

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Campaign",
    "ConsentEvent",
    "DailyStat",
    "Delivery",
    "Invitation",
    "LinkClickCount",
    "Mailing",
    "Membership",
    "Permission",
    "PrivacyNotice",
    "SignupForm",
    "Subscriber",
    "Subscription",
    "Suppression",
    "Topic",
    "WebhookEvent",
]
