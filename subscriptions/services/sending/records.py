"""What the sending engine's steps hand each other: a claimed delivery with its person
(`Claimed`) and what sending it came to (`Result`), on PostgreSQL and SQLite alike."""

from dataclasses import dataclass


@dataclass
class Claimed:
    delivery_id: int
    subscriber_id: int
    email: str
    first_name: str
    link_key: str
    email_hmac: str
    eligible: bool


@dataclass(frozen=True)
class Result:
    status: str  # a Delivery.Status
    esp_message_id: str = ""
    error: str = ""
    esp_down: bool = False
    refused: bool = False  # the server refused the address itself for good (transports.Refused)
