"""The headers written alike on every path, bulk and transactional: From, and RFC 8058's
one-click unsubscribe pair (List-Unsubscribe and List-Unsubscribe-Post)."""

from email.utils import formataddr

from subscriptions.models import Campaign

# List-Unsubscribe-Post is the same in every message that carries List-Unsubscribe:
# bulk paths write it once per mailing (or per call), beside each person's link.
ONE_CLICK_POST = {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def from_header(campaign: Campaign) -> str:
    """The campaign's sender as a From header value (a non-ASCII name RFC 2047-encoded)."""
    return formataddr((campaign.sender_name, campaign.sender_email))


def list_unsubscribe_mailto(campaign: Campaign) -> str:
    """The mailto alternative, for campaigns that take "unsubscribe me" by email; else ""."""
    if campaign.inbound_unsubscribe and campaign.inbound_address:
        return f", <mailto:{campaign.inbound_address}?subject=unsubscribe>"
    return ""


def list_unsubscribe(*, unsubscribe_url: str, mailto: str) -> dict[str, str]:
    """One person's List-Unsubscribe: their one-click link, then the campaign's mailto (if any)."""
    return {"List-Unsubscribe": f"<{unsubscribe_url}>{mailto}"}


def list_unsubscribe_headers(*, unsubscribe_url: str, mailto: str) -> dict[str, str]:
    """Both one-click headers, as every message to a subscribed person carries them."""
    return {**list_unsubscribe(unsubscribe_url=unsubscribe_url, mailto=mailto), **ONE_CLICK_POST}
