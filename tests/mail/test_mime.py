import dataclasses
from email import message_from_bytes, policy

import pytest

from subscriptions.mail.letter import Copy, Letter
from subscriptions.mail.mime import MimeTemplate, UnsendableAddress, dot_stuff, envelope_address
from subscriptions.mail.render import Personal, mailing_compile
from subscriptions.models import Mailing
from subscriptions.tokens import make_delivery_reference
from tests.support.factories import CampaignFactory, TopicFactory

pytestmark = pytest.mark.django_db

ZOE = Copy(
    delivery_id=7,
    address="zoe@example.com",
    first_name="Zoë",
    unsubscribe_url="https://t.test/u/1.abc/",
    manage_url="https://t.test/manage/1.def/",
    message_id="<7.x@police.example.org>",
)


@pytest.fixture
def template():
    campaign = CampaignFactory(sender_name="Polîce recruitment", sender_email="jobs@police.example.org")
    mailing = Mailing.objects.create(
        campaign=campaign, subject="Ça recrute: Kent", body='Hi {{ first_name|default:"there" }}!\n\n.starts with a dot'
    )
    mailing.topics.set([TopicFactory(campaign=campaign)])
    return MimeTemplate(letter=Letter(compiled=mailing_compile(mailing=mailing), campaign=campaign))


def parse(data: bytes):
    return message_from_bytes(data, policy=policy.SMTP)


def test_the_bytes_parse_as_a_two_part_message_with_the_person_in_it(template):
    data = template.as_bytes(ZOE)
    message = parse(data)
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Ça recrute: Kent"
    assert message["From"].addresses[0].display_name == "Polîce recruitment"
    assert message["To"] == "zoe@example.com"
    assert message["List-Unsubscribe"] == "<https://t.test/u/1.abc/>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Tidings-Delivery"] == make_delivery_reference(7)
    assert "Hi Zoë!" in message.get_body(("plain",)).get_content()
    assert "Hi Zoë!" in message.get_body(("html",)).get_content()


def test_an_empty_first_name_takes_the_default(template):
    blank = Personal(first_name="  ", unsubscribe_url="u", manage_url="m")
    assert "Hi there!" in template.compiled.render_text(blank)


def test_a_hostile_first_name_is_escaped_in_html_and_cannot_break_lines(template):
    hostile = Personal(
        first_name='<img src=x onerror="alert(1)">\r\nBcc: x@evil.test', unsubscribe_url="u", manage_url="m"
    )
    html = template.compiled.render_html(hostile)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Bcc: x@evil.test" in html
    assert "\nBcc" not in template.compiled.render_text(hostile)


def test_every_line_ends_in_crlf_and_fits_smtp(template):
    data = template.as_bytes(dataclasses.replace(ZOE, message_id="<7.x@d>"))
    lines = data.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 998


@pytest.mark.parametrize("address", ["a@b.example\r\nBcc: c@d.example", "ñ@example.com", "a b@example.com"])
def test_an_address_that_would_break_a_header_is_refused(address):
    with pytest.raises(UnsendableAddress):
        envelope_address(address)


def test_an_international_domain_is_sent_as_punycode():
    assert envelope_address("someone@bücher.example") == "someone@xn--bcher-kva.example"


def test_dot_stuffing_doubles_a_leading_dot():
    assert dot_stuff(b"a\r\n.b\r\n..c\r\n") == b"a\r\n..b\r\n...c\r\n"
