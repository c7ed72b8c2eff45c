"""Build transactional messages: templates/emails/<name>.{subject.txt,txt,html} -> one email.

Bulk mailings are compiled once per mailing elsewhere (see the sending engine);
this module builds the mail that goes to one person at a time: confirmations,
welcomes, manage links, acknowledgements.
"""

from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from subscriptions.models import Campaign, Subscriber
from subscriptions.sparkpost import written_for_default_mailer
from subscriptions.tokens import LinkPurpose, make_link_token


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def manage_url(subscriber: Subscriber) -> str:
    token = make_link_token(purpose=LinkPurpose.MANAGE, subscriber=subscriber)
    return absolute_url(reverse("manage", args=[token]))


def build_email(*, template: str, campaign: Campaign, to: str, context: dict[str, Any]) -> EmailMultiAlternatives:
    context = {"campaign": campaign, "site_url": settings.SITE_URL, **context}
    # A subject is one line: template newlines must never reach the header.
    subject = " ".join(render_to_string(f"emails/{template}.subject.txt", context).split())
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=formataddr((campaign.sender_name, campaign.sender_email)),
        to=[to],
        reply_to=[campaign.contact_email] if campaign.contact_email else None,
    )
    message.attach_alternative(html, "text/html")
    return written_for_default_mailer(message)
