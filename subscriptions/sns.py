"""Amazon SNS message signatures: did SNS send this, for one of our topics?

Amazon SES reports bounces, complaints and inbound mail through SNS, and
django-anymail reads those messages without checking their signature (its
amazon_ses webhook says "Future: Verify SNS message signature"). Anyone who knew
the webhook password could then post a "complaint" about anyone. So every SNS
message is checked here first, as AWS documents it
(https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
the listed fields, each as "name\\nvalue\\n", signed with RSA over SHA1
(SignatureVersion 1) or SHA256 (2) by the certificate at SigningCertURL, which must
be an https URL on an sns.<region>.amazonaws.com host. The signature proves AWS sent
it, not that our topic did (any AWS account can sign a message of its own topic),
so the TopicArn must be one of settings.AMAZON_SES_SNS_TOPIC_ARNS too.

The small validator packages on PyPI for this were last released between 2015 and
2022; `cryptography` (already a dependency) does the one RSA check they wrap.
Certificates are fetched once and kept in the cache for a day.
"""

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.cache import cache

_CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _CONFIRMATION_FIELDS,
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_CERTIFICATE_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
CERTIFICATE_CACHE_SECONDS = 86400
FETCH_TIMEOUT_SECONDS = 5


class SnsMessageInvalid(Exception):
    """Not a genuine SNS message for one of our topics; the reason names no person."""


def string_to_sign(message: dict[str, Any]) -> bytes:
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise SnsMessageInvalid("unknown SNS message type")
    # Subject is signed only when the message has one.
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message).encode()


def certificate_url_allowed(url: str) -> bool:
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.port is None
        and parts.username is None
        and bool(_CERTIFICATE_HOST.match(parts.hostname or ""))
        and parts.path.endswith(".pem")
    )


def certificate_cache_key(url: str) -> str:
    return "tidings:sns-certificate:" + hashlib.sha256(url.encode()).hexdigest()


def _certificate(url: str) -> x509.Certificate:
    key = certificate_cache_key(url)
    pem = cache.get(key)
    if pem is None:
        try:
            response = requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, allow_redirects=False)
            response.raise_for_status()
        except requests.RequestException as error:
            raise SnsMessageInvalid(f"cannot fetch the signing certificate: {type(error).__name__}") from error
        pem = response.content
        cache.set(key, pem, timeout=CERTIFICATE_CACHE_SECONDS)
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise SnsMessageInvalid("the signing certificate is not a PEM certificate") from error
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SnsMessageInvalid("the signing certificate is not valid now")
    return certificate


def sns_message_verify(message: dict[str, Any], *, topic_arns: list[str]) -> None:
    """Raise SnsMessageInvalid unless SNS signed this message for one of `topic_arns`."""
    if message.get("TopicArn") not in topic_arns:
        raise SnsMessageInvalid("the message is not from a topic in AMAZON_SES_SNS_TOPIC_ARNS")
    algorithm = _HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SnsMessageInvalid("unknown SignatureVersion")
    url = str(message.get("SigningCertURL", ""))
    if not certificate_url_allowed(url):
        raise SnsMessageInvalid("SigningCertURL is not an https URL on an SNS host")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except binascii.Error as error:
        raise SnsMessageInvalid("the signature is not base64") from error
    public_key = _certificate(url).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SnsMessageInvalid("the signing certificate does not hold an RSA key")
    try:
        public_key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature as error:
        raise SnsMessageInvalid("the signature does not verify") from error


def sns_timestamp(message: dict[str, Any]) -> datetime | None:
    """When SNS sent the message (a signed field), or None if it is unreadable."""
    try:
        return datetime.fromisoformat(str(message.get("Timestamp", "")).replace("Z", "+00:00"))
    except ValueError:
        return None
