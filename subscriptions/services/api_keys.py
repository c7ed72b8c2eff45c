"""A campaign's named API keys for server-to-server sign-ups. Only a hash is stored;
the key itself is shown once, when it is made."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from subscriptions.audit import Actor, actor_name, audit_record
from subscriptions.models import ApiKey, Campaign

KEY_PREFIX = "tid_"
# last_used_at is a hint for staff, not a log: write it at most once a minute per key.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(
    *, campaign: Campaign, name: str, actor: Actor = None, rate_limit_per_minute: int | None = None
) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the key, which is never shown again."""
    name = name.strip()
    if not name:
        raise ValidationError("Give the key a name, so you can tell it apart from the others.")
    secret = f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        campaign=campaign, name=name, prefix=secret[:10], key_hash=_hash(secret), created_by_name=actor_name(actor),
        rate_limit_per_minute=rate_limit_per_minute or settings.API_LIMIT_PER_KEY_PER_MINUTE,
    )  # fmt: skip
    audit_record(
        actor=actor, action="api_key_created", campaign_id=campaign.pk, target_type="api_key", target_id=key.pk
    )
    return key, secret


def api_key_revoke(*, campaign_id: int, key_id: int, actor: Actor = None) -> ApiKey:
    """Stop a key working now. Only a key of the given campaign can be revoked."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id, campaign_id=campaign_id).first()
        if key is None:
            raise ValidationError("There is no such key in this campaign.")
        now = timezone.now()
        if key.expires_at is None or key.expires_at > now:
            key.expires_at = now
            key.save(update_fields=["expires_at"])
            audit_record(
                actor=actor, action="api_key_revoked", campaign_id=campaign_id, target_type="api_key", target_id=key.pk
            )
    return key


def api_key_rotate(
    *, campaign: Campaign, name: str = "Default", actor: Actor = None, overlap: timedelta | None = None
) -> str:
    """A new key under `name`; the live keys of that name keep working for the overlap
    period (API_KEY_ROTATION_OVERLAP_HOURS), so the systems using them can move over."""
    overlap = timedelta(hours=settings.API_KEY_ROTATION_OVERLAP_HOURS) if overlap is None else overlap
    with transaction.atomic():
        ends = timezone.now() + overlap
        old = ApiKey.objects.select_for_update().filter(campaign=campaign, name=name.strip()).live()
        rotated = list(old.values_list("pk", flat=True))
        old.filter(expires_at__isnull=True).update(expires_at=ends)
        old.filter(expires_at__gt=ends).update(expires_at=ends)
        key, secret = api_key_create(campaign=campaign, name=name, actor=actor)
        if rotated:
            audit_record(
                actor=actor, action="api_key_rotated", campaign_id=campaign.pk, target_type="api_key",
                target_id=key.pk, replaces=rotated, old_keys_end=ends.isoformat(),
            )  # fmt: skip
    return secret


def api_key_find(*, campaign: Campaign, secret: str) -> ApiKey | None:
    """The live key of this campaign that `secret` is, or None. Notes when it was used."""
    if not secret.startswith(KEY_PREFIX):
        return None
    key = ApiKey.objects.filter(campaign=campaign, key_hash=_hash(secret)).live().first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_rotate_one(*, campaign: Campaign, key_id: int, actor: Actor = None) -> tuple[ApiKey, str]:
    """Rotate the live key with this id (see api_key_rotate); the new key keeps its
    rate limit. Returns the new key and its secret, which is never shown again."""
    with transaction.atomic():
        old = ApiKey.objects.live().filter(pk=key_id, campaign=campaign).first()
        if old is None:
            raise ValidationError("There is no such working key in this campaign.")
        secret = api_key_rotate(campaign=campaign, name=old.name, actor=actor)
        new = ApiKey.objects.get(key_hash=_hash(secret))
        new.rate_limit_per_minute = old.rate_limit_per_minute
        new.save(update_fields=["rate_limit_per_minute"])
    return new, secret
