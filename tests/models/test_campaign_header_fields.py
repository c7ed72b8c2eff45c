"""Campaign fields that end up in email headers refuse control characters, so nobody who
edits a campaign can add headers of their own."""

import pytest
from django.core.exceptions import ValidationError

from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sender_name", "Police\r\nBcc: everyone@example.net"),
        ("sender_name", "Police\nrecruitment"),
        ("name", "Kent\x00"),
        ("sender_email", "jobs@police.example.org\r\nBcc: x@example.net"),
        ("inbound_address", "unsub@police.example.org\n"),
    ],
)
def test_a_header_field_refuses_control_characters(field, value):
    campaign = CampaignFactory.build(**{field: value})
    with pytest.raises(ValidationError) as caught:
        campaign.full_clean(exclude=["slug"])
    assert field in caught.value.message_dict


def test_ordinary_names_pass():
    CampaignFactory.build(sender_name="Polîce recruitment: Kent", name="Kent & Medway").full_clean(exclude=["slug"])
