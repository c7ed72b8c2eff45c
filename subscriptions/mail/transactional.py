"""Build transactional messages: templates/emails/<name>.{subject.txt,txt,html} -> one email.

Bulk mailings are compiled once per mailing elsewhere (see the sending engine);
this module builds the mail that goes to one person at a time: confirmations,
welcomes, manage links, acknowledgements.
"""

from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.urls import reverse

from subscriptions.mail.mime import list_unsubscribe_headers
from subscriptions.mail.transports.sparkpost import written_for_default_mailer
from subscriptions.models import Campaign, Subscriber
from subscriptions.tokens import LinkPurpose, make_link_token


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def manage_url(subscriber: Subscriber) -> str:
    token = make_link_token(purpose=LinkPurpose.MANAGE, subscriber=subscriber)
    return absolute_url(reverse("manage", args=[token]))


def unsubscribe_url(subscriber: Subscriber) -> str:
    token = make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=subscriber)
    return absolute_url(reverse("unsubscribe", args=[token]))


def render_subject(template: str, context: dict[str, Any]) -> str:
    """A subject is plain text, not HTML: rendered without escaping (`&` stays `&`), and
    on one line, since a line break in a header would start another header."""
    compiled = get_template(f"emails/{template}.subject.txt").template  # type: ignore[attr-defined]
    # str.split() also splits on \u2028, \x1c-\x1f and \x85, which some mail code reads as line ends.
    return " ".join(compiled.render(Context(context, autoescape=False)).split())


def build_email(
    *,
    template: str,
    campaign: Campaign,
    to: str,
    context: dict[str, Any],
    subscriber: Subscriber | None = None,
) -> EmailMultiAlternatives:
    """One person's email. Given the `subscriber` it goes to, and they are subscribed, it
    carries the same one-click unsubscribe headers as bulk mail."""
    context = {"campaign": campaign, "site_url": settings.SITE_URL, **context}
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    headers = {}
    if subscriber is not None and subscriber.is_active and subscriber.email.lower() == to.lower():
        headers = list_unsubscribe_headers(campaign=campaign, unsubscribe_url=unsubscribe_url(subscriber))
    message = EmailMultiAlternatives(
        subject=render_subject(template, context),
        body=text,
        from_email=formataddr((campaign.sender_name, campaign.sender_email)),
        to=[to],
        reply_to=[campaign.contact_email] if campaign.contact_email else None,
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    return written_for_default_mailer(message)
