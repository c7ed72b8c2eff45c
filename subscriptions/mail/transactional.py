"""Every email to one person, built and sent here: one function per email, each given
the rows it needs (already loaded) and sending through the default mailer. Whether and
when one goes (load by id, check state, record that it went) is the services' to say.

Each email is three templates, templates/emails/<name>.{subject.txt,txt,html}, put
together by build_email; the staff test copy of a mailing is the one built from the
mailing instead. Bulk mailings go out through mail.transports.
"""

import datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.urls import reverse

from subscriptions.mail.headers import from_header, list_unsubscribe_headers, list_unsubscribe_mailto
from subscriptions.mail.render import Personal, mailing_compile
from subscriptions.mail.transports.sparkpost import written_for_default_mailer
from subscriptions.models import Campaign, ConsentEvent, Invitation, Mailing, PrivacyNotice, Subscriber, Topic
from subscriptions.tokens import ConfirmPurpose, LinkPurpose, make_confirm_token, make_link_token


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def manage_url(subscriber: Subscriber) -> str:
    token = make_link_token(purpose=LinkPurpose.MANAGE, subscriber=subscriber)
    return absolute_url(reverse("manage", args=[token]))


def unsubscribe_url(subscriber: Subscriber) -> str:
    token = make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=subscriber)
    return absolute_url(reverse("unsubscribe", args=[token]))


def _confirm_url(view: str, *, purpose: ConfirmPurpose, event: ConsentEvent, valid_days: int) -> str:
    subscriber = event.subscriber
    token = make_confirm_token(
        purpose=purpose,
        campaign_id=subscriber.campaign_id,
        subscriber_id=subscriber.pk,
        event_id=event.pk,
        valid_days=valid_days,
    )
    return absolute_url(reverse(view, args=[token]))


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
        headers = list_unsubscribe_headers(
            unsubscribe_url=unsubscribe_url(subscriber), mailto=list_unsubscribe_mailto(campaign)
        )
    message = EmailMultiAlternatives(
        subject=render_subject(template, context),
        body=text,
        from_email=from_header(campaign),
        to=[to],
        reply_to=[campaign.contact_email] if campaign.contact_email else None,
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    return written_for_default_mailer(message)


def signup_confirmation(*, event: ConsentEvent, topics: list[Topic]) -> None:
    """The answer to one sign-up request (`event`): a confirmation link, or for someone
    already subscribed to all they chose, their manage link."""
    subscriber = event.subscriber
    campaign = subscriber.campaign
    variant = event.details.get("variant", "new")
    context: dict[str, object] = {
        "subscriber": subscriber,
        "form": event.form,
        "topics": topics,
        "expiry_days": campaign.pending_expiry_days,
    }
    if variant == "already":
        context["manage_url"] = manage_url(subscriber)
    else:
        context["confirm_url"] = _confirm_url(
            "signup-confirm", purpose=ConfirmPurpose.SIGNUP, event=event, valid_days=campaign.pending_expiry_days
        )
    template = {"already": "signup_already", "add_topics": "signup_add_topics"}.get(variant, "signup_confirm")
    # A first request gets no unsubscribe header (no subscription exists yet); one from
    # someone already subscribed does.
    build_email(
        template=template, campaign=campaign, to=subscriber.email, context=context, subscriber=subscriber
    ).send()


def welcome(*, subscriber: Subscriber, topics: list[Topic], all_topics: list[Topic]) -> None:
    """The welcome after a confirmation: the `topics` just confirmed, among `all_topics` they now have."""
    context = {
        "subscriber": subscriber,
        "topics": topics,
        "all_topics": all_topics,
        "manage_url": manage_url(subscriber),
    }
    build_email(
        template="welcome", campaign=subscriber.campaign, to=subscriber.email, context=context, subscriber=subscriber
    ).send()


def manage_link(*, subscriber: Subscriber) -> None:
    context = {"subscriber": subscriber, "manage_url": manage_url(subscriber)}
    build_email(
        template="manage_link",
        campaign=subscriber.campaign,
        to=subscriber.email,
        context=context,
        subscriber=subscriber,
    ).send()


def email_change_confirmation(*, event: ConsentEvent, to: str, valid_days: int) -> None:
    """The link that confirms an email change (`event`), to the new address `to`."""
    context = {
        "confirm_url": _confirm_url(
            "manage-email-confirm", purpose=ConfirmPurpose.EMAIL_CHANGE, event=event, valid_days=valid_days
        ),
        "valid_days": valid_days,
    }
    build_email(template="email_change_confirm", campaign=event.subscriber.campaign, to=to, context=context).send()


def email_changed_notice(*, campaign: Campaign, to: str) -> None:
    """The notice to the old address `to` that its subscription moved."""
    build_email(template="email_changed_notice", campaign=campaign, to=to, context={}).send()


def reconfirmation_request(
    *, subscriber: Subscriber, reminder: bool, lapse_on: datetime.date, privacy_notice: PrivacyNotice | None
) -> None:
    """The request to reconfirm (or its reminder), saying the day they lapse without an answer."""
    reconfirm = make_link_token(purpose=LinkPurpose.RECONFIRM, subscriber=subscriber)
    context = {
        "subscriber": subscriber,
        "reminder": reminder,
        "reconfirm_url": absolute_url(reverse("reconfirm", args=[reconfirm])),
        "unsubscribe_url": unsubscribe_url(subscriber),
        "manage_url": manage_url(subscriber),
        "lapse_on": lapse_on,
        "privacy_notice": privacy_notice,
    }
    build_email(
        template="reconfirm_request",
        campaign=subscriber.campaign,
        to=subscriber.email,
        context=context,
        subscriber=subscriber,
    ).send()


def inbound_unsubscribe_acknowledgement(*, subscriber: Subscriber) -> None:
    """The reply to an "unsubscribe me" email: it worked, and where to sign up again."""
    campaign = subscriber.campaign
    context = {"signup_url": absolute_url(reverse("campaign-landing", args=[campaign.slug]))}
    build_email(template="unsubscribe_ack", campaign=campaign, to=subscriber.email, context=context).send()


def staff_invitation(*, invitation: Invitation, token: str) -> None:
    """The link that lets the invited address join the campaign's team."""
    context = {
        "invitation": invitation,
        "invitation_url": absolute_url(reverse("staff:invitation_accept", args=[token])),
    }
    build_email(template="staff_invitation", campaign=invitation.campaign, to=invitation.email, context=context).send()


def mailing_test(*, mailing: Mailing, personal: Personal, to: str) -> None:
    """One copy of a mailing, subject marked [Test], to a staff address, filled with `personal`."""
    compiled = mailing_compile(mailing=mailing)
    message = EmailMultiAlternatives(
        subject=f"[Test] {compiled.subject}",
        body=compiled.render_text(personal),
        from_email=from_header(mailing.campaign),
        to=[to],
    )
    message.attach_alternative(compiled.render_html(personal), "text/html")
    mailers.default.send_messages([written_for_default_mailer(message)])
