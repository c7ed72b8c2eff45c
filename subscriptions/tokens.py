"""Every link token: make and verify. Nothing else builds or checks a token.

Two families:

* Signed, expiring tokens (Django signing, salted and timestamped) for one-off
  confirmations: a sign-up, an email change. They name the ConsentEvent that asked,
  and are single use through the state change that confirming causes, never by
  trusting the token alone.
* Link tokens for manage, unsubscribe and reconfirm links: an HMAC over
  (purpose, subscriber id, link_key), 128 bits, URL-safe and without expiry, so an
  unsubscribe link in a year-old email still works. Rotating `Subscriber.link_key`
  revokes them all.

And one reference that is not a link: the delivery reference a bulk message carries
(in a header and in ESP metadata) for webhooks to name its delivery by, tagged so that
it cannot be guessed.

Never log a token or a URL that carries one.
"""

import base64
import hmac
import time
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

from subscriptions.models import Subscriber

LINK_MAC_BYTES = 16  # 128 bits


class LinkPurpose(StrEnum):
    MANAGE = "manage"
    UNSUBSCRIBE = "unsubscribe"
    RECONFIRM = "reconfirm"


class ConfirmPurpose(StrEnum):
    SIGNUP = "signup"
    EMAIL_CHANGE = "email-change"


class TokenInvalid(Exception):
    """Tampered, truncated, foreign or revoked: the caller shows one generic page."""


class TokenExpired(TokenInvalid):
    """Genuine but too old: the caller may offer to start again on the campaign's page."""

    def __init__(self, campaign_id: int | None = None) -> None:
        super().__init__()
        self.campaign_id = campaign_id


@dataclass(frozen=True)
class ConfirmClaim:
    campaign_id: int
    subscriber_id: int
    event_id: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _link_mac(purpose: LinkPurpose, subscriber_id: int, link_key: str, secret: str) -> str:
    digest = salted_hmac(f"tidings.link.{purpose}", f"{subscriber_id}:{link_key}", secret=secret, algorithm="sha256")
    return _b64(digest.digest()[:LINK_MAC_BYTES])


def make_link_token(*, purpose: LinkPurpose, subscriber: Subscriber) -> str:
    return make_link_token_for(purpose=purpose, subscriber_id=subscriber.pk, link_key=subscriber.link_key)


def make_link_token_for(*, purpose: LinkPurpose, subscriber_id: int, link_key: str) -> str:
    """The same token from raw values, for bulk sending, which never loads Subscriber models."""
    return f"{subscriber_id}.{_link_mac(purpose, subscriber_id, link_key, settings.SECRET_KEY)}"


def link_token_subscriber_id(*, token: str) -> int:
    """The subscriber id a link token claims; unverified until `check_link_token`."""
    head, _, mac = token.partition(".")
    if not head.isdigit() or len(head) > 18 or not mac:
        raise TokenInvalid
    return int(head)


def check_link_token(*, purpose: LinkPurpose, token: str, subscriber: Subscriber) -> None:
    if link_token_subscriber_id(token=token) != subscriber.pk:
        raise TokenInvalid
    mac = token.partition(".")[2]
    # Old secrets still verify after a SECRET_KEY rotation, so links in sent mail keep working.
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        if hmac.compare_digest(mac, _link_mac(purpose, subscriber.pk, subscriber.link_key, secret)):
            return
    raise TokenInvalid


def subscriber_for_link_token(*, purpose: LinkPurpose, token: str) -> Subscriber:
    """The subscriber a genuine link token belongs to, or TokenInvalid (also when erased)."""
    subscriber_id = link_token_subscriber_id(token=token)
    subscriber = Subscriber.objects.select_related("campaign").filter(pk=subscriber_id).first()
    if subscriber is None:
        raise TokenInvalid
    check_link_token(purpose=purpose, token=token, subscriber=subscriber)
    return subscriber


def make_confirm_token(
    *, purpose: ConfirmPurpose, campaign_id: int, subscriber_id: int, event_id: int, valid_days: int
) -> str:
    # The expiry travels inside the signed payload, because how long a link lives is
    # the campaign's choice and is known when the link is made. The campaign id lets an
    # expired link point back to the campaign after the pending sign-up is deleted.
    expires = int(time.time()) + valid_days * 86400
    payload = {"c": campaign_id, "s": subscriber_id, "e": event_id, "x": expires}
    return signing.dumps(payload, salt=f"tidings.confirm.{purpose}")


def read_confirm_token(*, purpose: ConfirmPurpose, token: str) -> ConfirmClaim:
    try:
        payload = signing.loads(token, salt=f"tidings.confirm.{purpose}")
        claim = ConfirmClaim(campaign_id=int(payload["c"]), subscriber_id=int(payload["s"]), event_id=int(payload["e"]))
        expires = int(payload["x"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise TokenInvalid from None
    if time.time() > expires:
        raise TokenExpired(campaign_id=payload.get("c"))
    return claim


# --- Delivery references ------------------------------------------------------------
# A bulk message names its delivery in X-Tidings-Delivery and in the ESP's metadata,
# which webhooks echo back. Every recipient sees the header, and a delivery id alone
# is guessable (mailing << 40 | subscriber), so a webhook naming one could bounce or
# complain anyone: the reference adds a keyed tag that only we can make.
DELIVERY_TAG_BYTES = 12  # 96 bits: guessing one is hopeless, and the header stays short


def _delivery_tag(delivery_id: int, secret: str) -> str:
    digest = salted_hmac("tidings.delivery-reference", str(delivery_id), secret=secret, algorithm="sha256")
    return _b64(digest.digest()[:DELIVERY_TAG_BYTES])


def make_delivery_reference(delivery_id: int) -> str:
    """`<delivery id>.<tag>`: what a message carries to name its delivery."""
    return f"{delivery_id}.{_delivery_tag(delivery_id, settings.SECRET_KEY)}"


def delivery_id_from_reference(reference: object) -> int | None:
    """The delivery id a reference names, or None unless its tag is ours (a bare id,
    from mail sent before references were tagged, or a forgery, is None too)."""
    if not isinstance(reference, str):
        return None
    head, _, tag = reference.strip().partition(".")
    if not head.isdigit() or len(head) > 19 or not tag:
        return None
    delivery_id = int(head)
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        if hmac.compare_digest(tag, _delivery_tag(delivery_id, secret)):
            return delivery_id
    return None
