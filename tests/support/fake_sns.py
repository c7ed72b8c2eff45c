"""A stand-in for Amazon SNS's signing: a key and certificate made here, and messages
signed with them as SNS signs its own.

The certificate is put in the cache under the URL the messages name, where
subscriptions.sns keeps the certificates it fetched, so no test reaches the network.

The string to sign is written out here from AWS's documentation
(https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html), not
taken from subscriptions.sns: a verifier that built it wrongly must fail these tests.
"""

import base64
import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.core.cache import cache

from subscriptions.sns import certificate_cache_key

TOPIC = "arn:aws:sns:eu-west-1:123456789012:tidings-ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"

# AWS's lists, in AWS's order: the signed keys of each message type.
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def documented_string_to_sign(body: dict[str, Any]) -> bytes:
    """Each signed key and its value, as "Key\\nValue\\n"; a Notification's Subject only if it has one."""
    keys = NOTIFICATION_KEYS if body["Type"] == "Notification" else CONFIRMATION_KEYS
    lines: list[str] = []
    for key in keys:
        if key == "Subject" and key not in body:
            continue
        lines += [key, body[key]]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class FakeSns:
    key: rsa.RSAPrivateKey
    certificate_pem: bytes

    def install(self, url: str = CERT_URL) -> None:
        cache.set(certificate_cache_key(url), self.certificate_pem, timeout=600)

    def notification(
        self,
        message: dict[str, Any] | str,
        *,
        topic: str = TOPIC,
        sent: datetime.datetime | None = None,
        version: str = "1",
        url: str = CERT_URL,
        subject: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": timestamp(sent),
            "SignatureVersion": version,
            "SigningCertURL": url,
        }
        if subject is not None:
            body["Subject"] = subject
        return self.sign(body)

    def confirmation(
        self, kind: str = "SubscriptionConfirmation", *, topic: str = TOPIC, version: str = "1"
    ) -> dict[str, Any]:
        """A SubscriptionConfirmation or UnsubscribeConfirmation as SNS sends one."""
        token = uuid.uuid4().hex
        body = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic,
            "Message": f"You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the"
            " SubscribeURL included in this message.",
            "SubscribeURL": f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
            "Timestamp": timestamp(None),
            "SignatureVersion": version,
            "SigningCertURL": CERT_URL,
        }
        return self.sign(body)

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        algorithm = hashes.SHA1() if body["SignatureVersion"] == "1" else hashes.SHA256()  # noqa: S303
        signature = self.key.sign(documented_string_to_sign(body), padding.PKCS1v15(), algorithm)
        return {**body, "Signature": base64.b64encode(signature).decode()}


def timestamp(sent: datetime.datetime | None) -> str:
    sent = sent or datetime.datetime.now(datetime.UTC)
    return sent.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def fake_sns(*, valid_for_days: int = 30) -> FakeSns:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=valid_for_days))
        .sign(key, hashes.SHA256())
    )
    return FakeSns(key=key, certificate_pem=certificate.public_bytes(serialization.Encoding.PEM))
