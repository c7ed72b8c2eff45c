"""Per-campaign API keys for server-to-server sign-ups. Only a hash is stored."""

import hashlib
import hmac
import secrets

from subscriptions.models import Campaign


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_rotate(*, campaign: Campaign) -> str:
    """Issue a new key (the old one stops working) and return it: it is shown once."""
    key = f"tid_{secrets.token_urlsafe(32)}"
    Campaign.objects.filter(pk=campaign.pk).update(api_key_hash=_hash(key))
    return key


def api_key_matches(*, campaign: Campaign, key: str) -> bool:
    return bool(campaign.api_key_hash) and hmac.compare_digest(campaign.api_key_hash, _hash(key))
