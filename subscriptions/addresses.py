"""Email addresses: the one normal form, and the keyed hash that suppressions keep."""

import hashlib
import hmac

from django.conf import settings


def normalise_email(address: str) -> str:
    """Trimmed, with the domain lower-cased. Uniqueness is case-insensitive on the whole address."""
    local, at, domain = address.strip().rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else address.strip()


def email_hmac(address: str) -> str:
    """Keyed hash of an address, case-insensitive: a suppression entry, never the address itself."""
    key = settings.SUPPRESSION_KEY.encode()
    return hmac.new(key, normalise_email(address).lower().encode(), hashlib.sha256).hexdigest()
