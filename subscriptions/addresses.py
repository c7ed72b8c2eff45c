"""Email addresses: the one normal form, and the keyed hash that suppressions keep."""

import hmac

from django.conf import settings


def normalise_email(address: str) -> str:
    """Trimmed, with the domain lower-cased. Uniqueness is case-insensitive on the whole address."""
    local, at, domain = address.strip().rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else address.strip()


def email_hmac(address: str) -> str:
    """Keyed hash of an address, case-insensitive: a suppression entry, never the address itself."""
    # hmac.digest: the same HMAC-SHA256 in one call, without building an HMAC object.
    return hmac.digest(settings.SUPPRESSION_KEY.encode(), normalise_email(address).lower().encode(), "sha256").hex()
