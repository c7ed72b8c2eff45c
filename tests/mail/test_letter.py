"""A mailing as every transport takes it (Letter), and one person's copy of it (Copy)."""

import pytest

from subscriptions.mail.letter import Letter, UnsafeHeader
from subscriptions.mail.render import Personal, mailing_compile
from subscriptions.models import Mailing
from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db

PERSONAL = Personal(
    first_name="Zoë", unsubscribe_url="https://t.test/u/1.abc/", manage_url="https://t.test/manage/1.def/"
)


def letter_for(**campaign_fields) -> Letter:
    campaign = CampaignFactory.create(**campaign_fields)
    mailing = Mailing.objects.create(campaign=campaign, subject="Hello", body="Hi")
    return Letter(compiled=mailing_compile(mailing=mailing), campaign=campaign)


def test_message_ids_are_unique_and_on_the_campaign_domain():
    letter = letter_for(sender_email="jobs@police.example.org")
    first, second = letter.message_id(7), letter.message_id(7)
    assert first != second
    assert first.startswith("<7.")
    assert first.endswith("@police.example.org>")


def test_the_inbound_unsubscribe_address_joins_the_header_when_the_campaign_accepts_it():
    letter = letter_for(inbound_unsubscribe=True, inbound_address="leave@police.example.org")
    assert letter.list_unsubscribe(PERSONAL) == {
        "List-Unsubscribe": "<https://t.test/u/1.abc/>, <mailto:leave@police.example.org?subject=unsubscribe>"
    }


@pytest.mark.parametrize("sender_name", ["Police\r\nBcc: everyone@example.net", "Police\nX-Injected: yes"])
def test_a_line_break_in_a_header_value_is_refused_not_sent(sender_name):
    """Refused for the letter itself, so whichever mailer is chosen, none sends it."""
    with pytest.raises(UnsafeHeader):
        letter_for(sender_name=sender_name)
