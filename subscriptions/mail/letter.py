"""What a bulk send hands its transport: one mailing as every copy shares it (Letter:
the compiled content and what the headers say of the campaign) and each person's copy
(Copy: their address, values, Message-ID and delivery reference). Every transport reads
these; only transports.smtp turns them into MIME (mail.mime).
"""

import secrets
from dataclasses import dataclass
from functools import cached_property

from subscriptions.mail.headers import from_header, list_unsubscribe, list_unsubscribe_mailto
from subscriptions.mail.render import CompiledMailing, PersonalValues
from subscriptions.models import Campaign
from subscriptions.tokens import make_delivery_reference


class UnsafeHeader(ValueError):
    """A header value with a line break, which would end the header and start another."""


def one_line(name: str, value: str) -> str:
    """`value`, refused if it would break the `name` header it goes in."""
    if "\r" in value or "\n" in value:
        raise UnsafeHeader(f"the {name} header contains a line break")
    return value


class Letter:
    """One mailing, the same in every copy. A From header that would break is refused
    here, before any transport is chosen, so no mailer sends it."""

    def __init__(self, *, compiled: CompiledMailing, campaign: Campaign) -> None:
        self.compiled = compiled
        self.domain = campaign.sender_domain
        self.sender = campaign.sender_email
        self.from_header = one_line("From", from_header(campaign))
        self.list_mailto = list_unsubscribe_mailto(campaign)

    def message_id(self, delivery_id: int) -> str:
        return f"<{delivery_id}.{secrets.token_hex(8)}@{self.domain}>"

    def list_unsubscribe(self, personal: PersonalValues) -> dict[str, str]:
        """This person's List-Unsubscribe header; List-Unsubscribe-Post is the same for everyone."""
        return list_unsubscribe(unsubscribe_url=personal.unsubscribe_url, mailto=self.list_mailto)


@dataclass(frozen=True)
class Copy:
    """One person's copy of a mailing: the one value a bulk send makes per person."""

    delivery_id: int
    address: str  # already passed through mime.envelope_address
    first_name: str
    unsubscribe_url: str
    manage_url: str
    message_id: str

    @cached_property
    def reference(self) -> str:
        """What the message names its delivery by (header and ESP metadata): unguessable."""
        return make_delivery_reference(self.delivery_id)
