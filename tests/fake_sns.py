"""A stand-in for Amazon SNS's signing: a key and certificate made here, and messages
signed with them as SNS signs its own.

The certificate is put in the cache under the URL the messages name, where
subscriptions.sns keeps the certificates it fetched, so no test reaches the network.
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

from subscriptions.sns import certificate_cache_key, string_to_sign

TOPIC = "arn:aws:sns:eu-west-1:123456789012:tidings-ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"


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
    ) -> dict[str, Any]:
        sent = sent or datetime.datetime.now(datetime.UTC)
        body = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": sent.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SignatureVersion": version,
            "SigningCertURL": url,
        }
        return self.sign(body)

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        algorithm = hashes.SHA1() if body["SignatureVersion"] == "1" else hashes.SHA256()  # noqa: S303
        signature = self.key.sign(string_to_sign(body), padding.PKCS1v15(), algorithm)
        return {**body, "Signature": base64.b64encode(signature).decode()}


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
