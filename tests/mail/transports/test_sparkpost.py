"""SparkPost's template language: braces of our own text, in bulk and in one person's mail, shown as written."""

import html

import pytest

from subscriptions.mail.transports import sparkpost as template_language
from subscriptions.models import Mailing
from subscriptions.services import mailings, preference_emails
from tests.support.factories import SubscriberFactory
from tests.support.fake_sparkpost import TemplateError, render

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "text",
    ["plain", "{", "}", "{{", "}}}", "{}", "}{", "{}}", "{{}", "a {{ b }} c", "{{{x}}}", "{{ if x }}", "a}}{{b"],
)
def test_any_braces_are_written_so_that_sparkpost_shows_them_as_they_are(text):
    written = template_language.literal(text)
    for escape in (False, True):
        assert render(written, {**template_language.BRACES, "x": "LEAK", "b": "LEAK"}, escape=escape) == text


def test_the_fake_refuses_what_sparkpost_would_read_as_code():
    """The fake is strict: unescaped staff text would fail the tests, not pass them."""
    for template in ("{{ if x }}a{{ end }}", "a {{", "{{{{x}}}", "a { b", "{{ opening_double_curly() }}", "{{y}}"):
        with pytest.raises(TemplateError):
            render(template, {"x": "1"}, escape=False)


def test_mail_to_one_person_through_sparkpost_shows_braces_as_written(sparkpost, campaign):
    """Transactional mail is written brace-safe too: a name or campaign name is never read as template code."""
    campaign.name = "Kent {{ if x }} {}}"
    campaign.contact_email = "re{cruit}@police.example.org"
    campaign.save(update_fields=["name", "contact_email"])
    person = SubscriberFactory(campaign=campaign, first_name="{{ tidings_lbrace }} Bo }")
    assert preference_emails.manage_link_send(campaign_id=campaign.pk, hashed_email=person.email_hmac)
    [call] = sparkpost.received
    [message] = call.messages().values()
    assert message["subject"] == "Your link to manage your Kent {{ if x }} {}} emails"
    assert message["reply_to"] == "re{cruit}@police.example.org"
    assert "Hello {{ tidings_lbrace }} Bo }," in message["text"]
    assert "Kent {{ if x }} {}}" in message["text"]
    assert html.escape("{{ tidings_lbrace }} Bo }") in message["html"]


def test_a_test_send_through_sparkpost_shows_braces_as_written(sparkpost, mailing):
    Mailing.objects.filter(pk=mailing.pk).update(subject="Kent {{ now }}")
    mailing.refresh_from_db()
    mailing.campaign.sender_name = "Kent Police, {Recruitment}"
    mailing.campaign.save(update_fields=["sender_name"])
    mailings.mailing_send_test(mailing=mailing, to="staff@example.org", first_name="{Al}")
    [message] = sparkpost.received[0].messages().values()
    assert message["subject"] == "[Test] Kent {{ now }}"
    assert message["from"] == '"Kent Police, {Recruitment}" <alerts@police.example.org>'
    assert "Hello {Al}," in message["text"]
