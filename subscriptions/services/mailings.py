"""Mailings as staff handle them: create, check, preview, test, send now, schedule, cancel.

Every refusal is a ValidationError worded for the person who pressed the button.
Sending itself happens in services.sending, started by the beat (or at once by
"send now"): these functions only move a mailing between states, each move guarded
by the state it comes from, so a double click sends once.
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from subscriptions import permissions, selectors
from subscriptions.audit import Actor, actor_name, audit_record, recorded_actor
from subscriptions.mail import transactional
from subscriptions.mail.render import (
    Personal,
    body_problems,
    link_url,
    mailing_compile,
    personal_url_problems,
)
from subscriptions.models import AuditEvent, Campaign, Mailing, Permission, Subscriber, Topic
from subscriptions.services.enqueue import enqueue_on_commit
from subscriptions.services.sending.stop import campaign_can_send, mailing_stop

SENDABLE_KINDS = (Mailing.Kind.NEWSLETTER, Mailing.Kind.ENTITY_ALERT, Mailing.Kind.SERVICE_NOTICE)
# A schedule this close to now is "now": a form takes a moment to submit.
SCHEDULE_GRACE = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class Preview:
    subject: str
    text: str
    html: str


def mailing_problems(*, mailing: Mailing, topics: Iterable[Topic] | None = None) -> list[str]:
    """Everything that stops this mailing from being sent, as sentences; empty when it can go."""
    campaign = mailing.campaign
    problems: list[str] = []
    if mailing.kind not in SENDABLE_KINDS:
        problems.append("Reconfirmation requests are sent by the reconfirmation process, not as a mailing.")
    if not campaign_can_send(campaign):
        problems.append(f"The campaign “{campaign.name}” has ended: nothing more can be sent to its subscribers.")
    if not mailing.subject.strip():
        problems.append("The subject is empty.")
    if "\r" in mailing.subject or "\n" in mailing.subject:
        problems.append("The subject has a line break: it must be one line.")
    problems += body_problems(mailing.body)
    problems += personal_url_problems(body=mailing.body, tracking_mode=campaign.tracking_mode)
    if topics is None:
        topics = mailing.topics.all() if mailing.pk else []
    audience = list(topics)
    if mailing.kind != Mailing.Kind.SERVICE_NOTICE:
        problems += _audience_problems(mailing, audience)
    return problems


def _audience_problems(mailing: Mailing, audience: list[Topic]) -> list[str]:
    if not audience:
        return ["Choose at least one topic: the audience is everyone subscribed to any of them."]
    problems = [
        f"The topic “{topic.name}” belongs to another campaign."
        for topic in audience
        if topic.campaign_id != mailing.campaign_id
    ]
    problems += [f"The topic “{topic.name}” is archived." for topic in audience if topic.archived]
    if mailing.kind == Mailing.Kind.ENTITY_ALERT:
        problems += [
            f"An entity alert goes to entity topics only; “{topic.name}” is a general topic."
            for topic in audience
            if topic.kind != Topic.Kind.ENTITY
        ]
    return problems


def mailing_validate(*, mailing: Mailing, topics: Iterable[Topic] | None = None) -> None:
    problems = mailing_problems(mailing=mailing, topics=topics)
    if problems:
        raise ValidationError(problems)


def mailing_create(
    *,
    campaign: Campaign,
    kind: str,
    subject: str,
    body: str,
    topics: Iterable[Topic] = (),
    created_by: User | None = None,
) -> Mailing:
    """A new draft, refused if it could never be sent as written."""
    topics = list(topics)
    mailing = Mailing(campaign=campaign, kind=kind, subject=subject, body=body, created_by=created_by)
    mailing_validate(mailing=mailing, topics=topics)
    with transaction.atomic():
        mailing.save()
        mailing.topics.set(topics)
    return mailing


def _audit(action: str, mailing: Mailing, actor: Actor, **details: object) -> None:
    audit_record(
        actor=actor,
        action=action,
        campaign_id=mailing.campaign_id,
        target_type="mailing",
        target_id=mailing.pk,
        **details,
    )


def _locked(mailing_id: int) -> Mailing:
    return Mailing.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=mailing_id)


def mailing_schedule(*, mailing_id: int, send_at: datetime.datetime, actor: Actor = None) -> Mailing:
    """Queue a draft to go at `send_at`; the beat starts it then."""
    if send_at < timezone.now() - SCHEDULE_GRACE:
        raise ValidationError("The scheduled time is in the past: choose a time from now on.")
    with transaction.atomic():
        mailing = _locked(mailing_id)
        if mailing.status not in (Mailing.Status.DRAFT, Mailing.Status.SCHEDULED):
            raise ValidationError(f"This mailing is {mailing.get_status_display().lower()}: it cannot be scheduled.")
        mailing_validate(mailing=mailing)
        _require_approval(mailing)
        mailing.status, mailing.scheduled_at = Mailing.Status.SCHEDULED, max(send_at, timezone.now())
        mailing.start_error = ""
        mailing.save(update_fields=["status", "scheduled_at", "start_error"])
        _audit("mailing_scheduled", mailing, actor, scheduled_at=mailing.scheduled_at.isoformat())
    return mailing


def mailing_send_now(*, mailing_id: int, actor: Actor = None) -> Mailing:
    """Send a draft or scheduled mailing at once. A second click finds it already going."""
    with transaction.atomic():
        mailing = _locked(mailing_id)
        if mailing.status not in (Mailing.Status.DRAFT, Mailing.Status.SCHEDULED):
            raise ValidationError(f"This mailing is {mailing.get_status_display().lower()}: it is not sent again.")
        mailing_validate(mailing=mailing)
        _require_approval(mailing)
        mailing.status, mailing.scheduled_at = Mailing.Status.SCHEDULED, timezone.now()
        mailing.start_error = ""
        mailing.save(update_fields=["status", "scheduled_at", "start_error"])
        _audit("mailing_sent", mailing, actor)
        enqueue_on_commit("subscriptions.dispatch_due_mailings")
    return mailing


def mailing_audience_count(*, mailing: Mailing) -> int:
    """How many people the mailing would go to now (the fan-out's rule)."""
    topic_ids = (
        None if mailing.kind == Mailing.Kind.SERVICE_NOTICE else list(mailing.topics.values_list("pk", flat=True))
    )
    return selectors.audience(campaign=mailing.campaign, topic_ids=topic_ids).count()


def mailing_needs_approval(*, mailing: Mailing) -> bool:
    """Whether the campaign's two-person rule applies: its audience is over the threshold."""
    threshold = mailing.campaign.approval_threshold
    return threshold is not None and mailing_audience_count(mailing=mailing) > threshold


def mailing_is_approved(mailing: Mailing) -> bool:
    # mailing_approve refuses the creator; the comparison guards rows written any other way.
    return mailing.approved_at is not None and (
        mailing.approved_by_id is None or mailing.approved_by_id != mailing.created_by_id
    )


def _require_approval(mailing: Mailing) -> None:
    if not mailing_is_approved(mailing) and mailing_needs_approval(mailing=mailing):
        raise ValidationError(
            f"This mailing goes to more than {mailing.campaign.approval_threshold} people, so a member "
            "who did not draft it must approve it before it is sent or scheduled."
        )


def mailing_approve(*, mailing_id: int, actor: Actor) -> Mailing:
    """Record a second member's approval of a draft: not its creator's own."""
    approver = recorded_actor(actor)
    with transaction.atomic():
        mailing = _locked(mailing_id)
        if mailing.status != Mailing.Status.DRAFT:
            raise ValidationError(f"This mailing is {mailing.get_status_display().lower()}: only a draft is approved.")
        if approver is None or approver.pk == mailing.created_by_id or _edited_by(mailing, approver.pk):
            raise ValidationError("You drafted or edited this mailing, so another member must approve it.")
        if not permissions.has_permission(approver, mailing.campaign_id, Permission.SEND):
            raise ValidationError("Only a member who may send this campaign's mailings can approve them.")
        mailing.approved_by = approver
        mailing.approved_by_name = actor_name(approver)
        mailing.approved_at = timezone.now()
        mailing.save(update_fields=["approved_by", "approved_by_name", "approved_at"])
        _audit("mailing_approved", mailing, actor, audience=mailing_audience_count(mailing=mailing))
    return mailing


def mailing_edited(*, mailing: Mailing, actor: Actor, fields: list[str]) -> None:
    """Record who changed a draft's content or audience: the trail shows every hand on
    it, and none of them may approve it (mailing_approve)."""
    _audit("mailing_edited", mailing, actor, fields=fields)


def _edited_by(mailing: Mailing, user_id: int) -> bool:
    return AuditEvent.objects.filter(
        target_type="mailing", target_id=mailing.pk, action="mailing_edited", actor_id=user_id
    ).exists()


def mailing_approval_clear(*, mailing: Mailing, actor: Actor = None) -> bool:
    """Forget an approval because the draft changed: what was approved is not what
    would go. Call on every change to a draft's content or audience. True if one was cleared."""
    if mailing.approved_at is None:
        return False
    mailing.approved_by, mailing.approved_by_name, mailing.approved_at = None, "", None
    Mailing.objects.filter(pk=mailing.pk).update(approved_by=None, approved_by_name="", approved_at=None)
    _audit("mailing_approval_cleared", mailing, actor)
    return True


def mailing_start_failed(*, mailing_id: int, error: BaseException) -> bool:
    """A due mailing that could not start (its mailer cannot be built, its fan-out
    fails): back to draft, so it neither sits "Scheduled" for ever, retried and failing
    every minute, nor goes out half-made; the reason is shown on the mailing
    (`start_error`, until it is sent or scheduled again) and goes in the audit trail.
    False, changing nothing, when the mailing had started (a fault after that is the
    sending's to handle) or was no longer scheduled."""
    # The error's kind and message: a mailer's missing setting, an SQL error. Fan-out
    # errors name ids and SQL, never an address (its parameters are ids and topics).
    reason = f"{type(error).__name__}: {error}"[:300]
    with transaction.atomic():
        mailing = Mailing.objects.select_for_update().filter(pk=mailing_id, status=Mailing.Status.SCHEDULED).first()
        if mailing is None:
            return False
        mailing.status, mailing.scheduled_at, mailing.start_error = Mailing.Status.DRAFT, None, reason
        mailing.save(update_fields=["status", "scheduled_at", "start_error"])
        _audit("mailing_start_failed", mailing, None, reason=reason)
    return True


def mailing_cancel(*, mailing_id: int, actor: Actor = None) -> Mailing:
    """Stop a mailing: before it starts nothing goes; while sending, whatever is still queued stays unsent."""
    with transaction.atomic():
        mailing = _locked(mailing_id)
        if mailing.status in (Mailing.Status.SENT, Mailing.Status.CANCELLED):
            raise ValidationError(f"This mailing is already {mailing.get_status_display().lower()}.")
        if mailing.status == Mailing.Status.SENDING:
            mailing_stop(mailing=mailing, reason="the mailing was cancelled")
        else:
            Mailing.objects.filter(pk=mailing.pk).update(status=Mailing.Status.CANCELLED)
        _audit("mailing_cancelled", mailing, actor)
    mailing.refresh_from_db()
    return mailing


def mailing_preview(*, mailing: Mailing, subscriber: Subscriber | None = None) -> Preview:
    """The mailing as this person would get it, without sending anything and without their links.

    A preview is shown to anyone who may view mailings, so it never holds a working
    manage or unsubscribe link: those never expire and would hand over the person.
    """
    compiled = mailing_compile(mailing=mailing)
    personal = _inert_personal(subscriber.first_name if subscriber is not None else "")
    return Preview(subject=compiled.subject, text=compiled.render_text(personal), html=compiled.render_html(personal))


# Not a link token (no subscriber id), so the public pages refuse it like any other bad link.
INERT_TOKEN = "preview"  # noqa: S105 (a placeholder, not a secret)


def _inert_personal(first_name: str) -> Personal:
    return Personal(
        first_name=first_name,
        unsubscribe_url=link_url(name="unsubscribe", token=INERT_TOKEN),
        manage_url=link_url(name="manage", token=INERT_TOKEN),
    )


def mailing_send_test(*, mailing: Mailing, to: str, first_name: str = "", actor: Actor = None) -> None:
    """Send one copy to a staff address. Its links belong to nobody, so they cannot unsubscribe a real person."""
    if not to:
        raise ValidationError("Your staff account has no email address to send the test to.")
    problems = body_problems(mailing.body)
    if problems:
        raise ValidationError(problems)
    transactional.mailing_test(mailing=mailing, personal=_inert_personal(first_name), to=to)
    _audit("mailing_test_sent", mailing, actor)


def alert_prefill(*, topic: Topic) -> dict[str, object]:
    """A draft entity alert for a topic whose public status changed, for staff to review."""
    status = topic.public_status or "updated"
    return {
        "campaign": topic.campaign_id,
        "kind": Mailing.Kind.ENTITY_ALERT,
        "topics": [topic.pk],
        "subject": f"{topic.name}: {status}",
        # The status is staff's own words ("Recruiting now", "Closed"): quoted as written, never
        # fitted into a sentence that only reads right for some of them.
        "body": f'Hello {{{{ first_name|default:"there" }}}},\n\n{topic.name} has a new status: **{status}**.\n',
    }


def alert_draft_create(*, topic: Topic, actor: Actor = None) -> Mailing:
    """Create (not send) the pre-filled entity alert for a topic's new public status."""
    if topic.kind != Topic.Kind.ENTITY:
        raise ValidationError(f"“{topic.name}” is not an entity topic, so it has no alerts.")
    prefill = alert_prefill(topic=topic)
    mailing = mailing_create(
        campaign=topic.campaign, kind=Mailing.Kind.ENTITY_ALERT, subject=str(prefill["subject"]),
        body=str(prefill["body"]), topics=[topic], created_by=recorded_actor(actor),
    )  # fmt: skip
    _audit("alert_drafted", mailing, actor, topic_id=topic.pk)
    return mailing


def topic_status_changed(*, topic: Topic, previous_status: str) -> bool:
    """Whether saving this topic should offer staff a pre-filled alert."""
    return topic.kind == Topic.Kind.ENTITY and bool(topic.public_status) and topic.public_status != previous_status
