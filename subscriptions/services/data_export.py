"""Everything held about one person, as plain data: the "download my data" file.

It holds the person's own rows only (subscriber, every subscription open or ended,
every consent event, every delivery) and names the mailings, topics, forms and
notices they point at, never anything about anyone else. Secrets that are ours,
not theirs (the link key, the address hash), are left out; that a suppression entry
or a legal hold exists is told, in words.

`about_your_data` is what UK GDPR Art. 15(1) says a person asking for their data is
also told: why it is held, who receives it, for how long, their rights, and where to
complain. It is built from the campaign's own settings and privacy notice, so it
says what this installation actually does.
"""

import datetime
from typing import Any

from django.conf import settings
from django.utils import dateformat, timezone

from subscriptions import selectors
from subscriptions.models import (
    AuditEvent,
    Campaign,
    ConsentEvent,
    Delivery,
    Subscriber,
    Subscription,
    Suppression,
    Topic,
)

# 2: legal hold, suppression entry, reminder and erasure dates, and `about_your_data`.
FORMAT_VERSION = 2
ICO_COMPLAINT_URL = "https://ico.org.uk/make-a-complaint/"
# The audit action privacy.legal_hold_place writes (privacy imports this module).
_HOLD_PLACED = "legal_hold_placed"
_ESP_NAMES = {
    "amazon_ses": "Amazon Simple Email Service (Amazon Web Services)", "brevo": "Brevo", "sendinblue": "Brevo",
    "mailersend": "MailerSend", "mailgun": "Mailgun", "mailjet": "Mailjet", "mailtrap": "Mailtrap",
    "mandrill": "Mandrill (Mailchimp)", "postal": "Postal", "postmark": "Postmark", "resend": "Resend",
    "scaleway": "Scaleway", "sendgrid": "SendGrid (Twilio)", "sparkpost": "SparkPost", "unisender_go": "Unisender Go",
}  # fmt: skip


def _when(value: datetime.datetime | datetime.date | None) -> str | None:
    return value.isoformat() if value else None


def subscriber_data_export(*, subscriber_id: int) -> dict[str, Any] | None:
    """The export for one person, or None when they no longer exist."""
    subscriber = Subscriber.objects.select_related("campaign").filter(pk=subscriber_id).first()
    if subscriber is None:
        return None
    campaign = subscriber.campaign
    topic_names = dict(Topic.objects.filter(campaign=campaign).values_list("pk", "name"))
    return {
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "controller": {
            "name": campaign.controller_name,
            "address": campaign.controller_address,
            "contact_email": campaign.contact_email,
            "dpo_email": campaign.dpo_email,
        },
        "campaign": {"name": campaign.name, "ends_on": _when(campaign.ends_on)},
        "subscriber": _subscriber(subscriber),
        "legal_hold": _legal_hold(subscriber),
        "suppression": _suppression(subscriber),
        "subscriptions": [_subscription(row, topic_names) for row in _subscriptions(subscriber)],
        "consent_events": [_consent_event(event, topic_names) for event in _consent_events(subscriber)],
        "deliveries": [_delivery(delivery) for delivery in _deliveries(subscriber)],
        "about_your_data": _about_your_data(campaign),
    }


def _subscriber(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "first_name": subscriber.first_name,
        "attributes": subscriber.attributes,
        "status": subscriber.status,
        "restricted": subscriber.restricted,
        "created_at": _when(subscriber.created_at),
        "confirmed_at": _when(subscriber.confirmed_at),
        "last_confirmed_at": _when(subscriber.last_confirmed_at),
        "reconfirm_requested_at": _when(subscriber.reconfirm_requested_at),
        "reconfirm_reminded_at": _when(subscriber.reconfirm_reminded_at),
        "withdrawn_at": _when(subscriber.withdrawn_at),
        # Set when erasure fell due while a legal hold kept the data.
        "erasure_due_at": _when(subscriber.erasure_due_at),
    }


def _legal_hold(subscriber: Subscriber) -> dict[str, Any]:
    if not subscriber.legal_hold:
        return {"on_hold": False}
    placed = (
        AuditEvent.objects.filter(action=_HOLD_PLACED, target_type="subscriber", target_id=subscriber.pk)
        .order_by("-created_at", "-pk")
        .first()
    )
    user = subscriber.legal_hold_set_by
    by = (user.get_full_name() or user.get_username()) if user else (placed.actor_name if placed else "")
    return {
        "on_hold": True,
        "since": _when(placed.created_at) if placed else None,
        "placed_by": f"{by or 'A member of staff'}, for {subscriber.campaign.controller_name}",
        "about": (
            "Your data is kept, even if you ask us to delete it or the campaign ends, because it may be needed "
            "for legal proceedings. We send you nothing while it is kept, and delete it as soon as the hold is "
            "lifted. The reason for the hold is not given here, as telling it could harm those proceedings or "
            "reveal legal advice; you can ask the contact below for it, and we will tell you what we can."
        ),
    }


def _suppression(subscriber: Subscriber) -> dict[str, Any] | None:
    entry = Suppression.objects.filter(campaign_id=subscriber.campaign_id, email_hmac=subscriber.email_hmac).first()
    if entry is None:
        return None
    return {
        "reason": entry.reason,
        "reason_in_words": entry.get_reason_display(),
        "since": _when(entry.created_at),
        "about": (
            "We keep a coded form of your email address (not the address itself) so that we never email you "
            "again unless you sign up and confirm once more. It is deleted when the campaign ends."
        ),
    }


def _subscriptions(subscriber: Subscriber) -> list[Subscription]:
    return list(Subscription.objects.filter(subscriber=subscriber).order_by("created_at", "pk"))


def _subscription(row: Subscription, topic_names: dict[int, str]) -> dict[str, Any]:
    return {
        "topic": topic_names.get(row.topic_id, ""),
        "started_at": _when(row.created_at),
        "ended_at": _when(row.ended_at),
        "source": row.source,
        "ended_reason": row.ended_reason,
    }


def _consent_events(subscriber: Subscriber) -> list[ConsentEvent]:
    return list(
        ConsentEvent.objects.filter(subscriber=subscriber)
        .select_related("form", "privacy_notice")
        .order_by("created_at", "pk")
    )


def _consent_event(event: ConsentEvent, topic_names: dict[int, str]) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "source": event.source,
        "at": _when(event.created_at),
        "form": {"title": event.form.title, "version": event.form.version} if event.form else None,
        "consent_wording": event.form.consent_wording if event.form else None,
        "privacy_notice": (
            {"version": event.privacy_notice.version, "url": event.privacy_notice.url} if event.privacy_notice else None
        ),
        "topics": [topic_names.get(pk, "") for pk in event.topic_ids],
        "details": event.details,
    }


def _deliveries(subscriber: Subscriber) -> list[Delivery]:
    mine = Delivery.objects.of_people(campaign_id=subscriber.campaign_id, subscriber_ids=[subscriber.pk])
    return list(mine.select_related("mailing").order_by("created_at", "pk"))


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "mailing_subject": delivery.mailing.subject,
        "status": delivery.status,
        "queued_at": _when(delivery.created_at),
        "sent_at": _when(delivery.sent_at),
    }


def _email_provider() -> str:
    mailer = str(getattr(settings, "MAILER", "") or "")
    if mailer in ("", "outbox"):
        return "No email provider: this installation only keeps emails in a local outbox and sends none."
    if mailer == "smtp":
        return "The organisation that runs our outgoing mail server, which delivers our emails to you."
    name = _ESP_NAMES.get(mailer, mailer.replace("_", " ").title())
    return (
        f"{name}, the email provider that delivers our emails to you. It receives your email address, your "
        "first name and the emails themselves, and acts only on our instructions."
    )


def _purposes(campaign: Campaign) -> list[str]:
    purposes = [
        f"To send you the {campaign.name} emails you chose, because you asked for them and confirmed your address "
        "(your consent, UK GDPR Article 6(1)(a)).",
        "To keep a record of that consent (what you agreed to, when, and on which form), so we can show you agreed.",
        "To stop emailing you, at once and for good, when you unsubscribe or ask us to delete your data.",
    ]
    if settings.TRACKING_ENABLED and campaign.tracking_mode == Campaign.TrackingMode.INDIVIDUAL:
        purposes.append("To see which of our emails you opened and which links you followed.")
    elif settings.TRACKING_ENABLED and campaign.tracking_mode == Campaign.TrackingMode.AGGREGATE:
        purposes.append("To count how many people opened each email and followed each link, never who did.")
    return purposes


def _day(value: datetime.date) -> str:
    return dateformat.format(value, "j F Y")


def _retention(campaign: Campaign) -> list[str]:
    notice = selectors.privacy_notice_current(campaign=campaign)
    kept = [f"Our privacy notice says: {notice.retention_summary}"] if notice and notice.retention_summary else []
    kept.append("When you unsubscribe or ask us to delete your data, we delete it within minutes.")
    if campaign.ends_on:
        kept.append(f"The campaign ends on {_day(campaign.ends_on)}; we delete everyone's data the day after.")
    if campaign.max_retention_days:
        kept.append(f"We delete your data {campaign.max_retention_days} days after you last confirmed you want "
                    "these emails, whatever else happens.")  # fmt: skip
    if campaign.reconfirm_after_days:
        kept.append(f"Every {campaign.reconfirm_after_days} days we ask whether you still want these emails; if "
                    f"you do not answer within {campaign.reconfirm_grace_days} days, we delete your data.")  # fmt: skip
    kept.append(f"A sign-up not confirmed within {campaign.pending_expiry_days} days is deleted.")
    kept.append(f"The record of each email we sent you is deleted {campaign.delivery_retention_days} days after "
                "that email went out (counts without names stay).")  # fmt: skip
    return kept


def _contact(campaign: Campaign) -> str:
    addresses = [address for address in (campaign.dpo_email, campaign.contact_email) if address]
    return addresses[0] if addresses else campaign.controller_name


def _about_your_data(campaign: Campaign) -> dict[str, Any]:
    notice = selectors.privacy_notice_current(campaign=campaign)
    contact = _contact(campaign)
    return {
        "purposes": _purposes(campaign),
        "recipients": [
            _email_provider(),
            f"Staff of {campaign.controller_name} who run this campaign. We do not sell or share your data with "
            "anyone else.",
        ],
        "retention": _retention(campaign),
        "source": "You gave us this data yourself, when you signed up and when you changed your preferences.",
        "automated_decisions": "None: no decision about you is made by automated means.",
        "your_rights": [
            "To access your data: get a copy of it (this file), and take it elsewhere.",
            "To correct your data: change your name or address in the preference centre, or ask us.",
            "To have your data deleted: use “Delete your data” in the preference centre, or ask us.",
            "To restrict our use of your data, or to object to it: ask us.",
            "To withdraw your consent at any time: use the unsubscribe link in any of our emails.",
            f"To ask about any of this, contact {contact}.",
        ],
        "complaints": {
            "how": "If you are unhappy with how we use your data, you can complain to the Information "
            "Commissioner's Office (ICO), the UK regulator for data protection.",
            "url": ICO_COMPLAINT_URL,
        },
        "privacy_notice": {"version": notice.version, "url": notice.url} if notice else None,
    }
