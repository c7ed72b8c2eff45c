"""Pausing a mailing on a fault of our configuration, and resuming it once a batch goes
out again: said where staff look (`start_error`), in the audit trail and in the log."""

import logging

from django.db import transaction

from subscriptions.audit import audit_record
from subscriptions.models import Mailing

logger = logging.getLogger(__name__)


def mailing_pause(*, mailing: Mailing, reason: str) -> None:
    """Say why sending stopped where staff look (`start_error`, shown on the mailing),
    once in the audit trail, and in an ERROR line on every attempt. The mailing stays
    `sending` with its people queued: never `sent` while anyone is (claims._COMPLETE),
    and the sweeper restarts it once its rest (run.ESP_DOWN_REST_SECONDS) is over."""
    advice = "Fix the mailer settings; sending resumes by itself."
    shown = f"Sending paused: {reason.rstrip('.')}. {advice}"
    if len(shown) > 300:  # start_error's length: keep the advice, cut the reason
        shown = f"Sending paused: {reason[:220]}… {advice}"
    logger.error("mailing %s: sending paused, no one failed: %s", mailing.pk, reason)
    sending_now = Mailing.objects.filter(pk=mailing.pk, status=Mailing.Status.SENDING)
    with transaction.atomic():
        # Audited when it pauses, not on every attempt while paused (one a minute); an
        # ESP's answer may differ per request, so the text shown is the latest.
        newly = sending_now.filter(start_error="").update(start_error=shown)
        if not newly:
            sending_now.update(start_error=shown)
        else:
            audit_record(
                actor=None, action="mailing_paused", campaign_id=mailing.campaign_id,
                target_type="mailing", target_id=mailing.pk, reason=reason,
            )  # fmt: skip


def mailing_resume(*, mailing: Mailing) -> None:
    """A batch went out: whatever paused the mailing is over (a cheap no-op otherwise)."""
    with transaction.atomic():
        if Mailing.objects.filter(pk=mailing.pk).exclude(start_error="").update(start_error=""):
            logger.info("mailing %s: sending resumed", mailing.pk)
            audit_record(
                actor=None, action="mailing_resumed", campaign_id=mailing.campaign_id,
                target_type="mailing", target_id=mailing.pk,
            )  # fmt: skip
