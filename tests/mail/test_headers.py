"""The headers every path writes alike: From, and the one-click unsubscribe pair."""

import pytest

from subscriptions.mail.headers import from_header, list_unsubscribe_headers, list_unsubscribe_mailto
from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def test_the_from_header_quotes_a_name_with_specials_and_encodes_one_that_is_not_ascii():
    assert from_header(CampaignFactory(sender_name="Kent, Police", sender_email="a@b.example")) == (
        '"Kent, Police" <a@b.example>'
    )
    assert from_header(CampaignFactory(sender_name="Polîce", sender_email="a@b.example")).startswith("=?utf-8?")


def test_both_one_click_headers_go_together_with_the_mailto_only_where_the_campaign_takes_one():
    plain = CampaignFactory(inbound_unsubscribe=False, inbound_address="leave@b.example")
    by_email = CampaignFactory(inbound_unsubscribe=True, inbound_address="leave@b.example")

    assert list_unsubscribe_headers(unsubscribe_url="https://t.test/u/x/", mailto=list_unsubscribe_mailto(plain)) == {
        "List-Unsubscribe": "<https://t.test/u/x/>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert list_unsubscribe_headers(unsubscribe_url="https://t.test/u/x/", mailto=list_unsubscribe_mailto(by_email))[
        "List-Unsubscribe"
    ] == ("<https://t.test/u/x/>, <mailto:leave@b.example?subject=unsubscribe>")
