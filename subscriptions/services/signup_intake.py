"""Recording the sign-ups the intake stream holds (subscriptions/intake.py).

One drain at a time normally runs (the stream's flag sees to that), reading entries in
batches and recording each in its own transaction, so one bad entry cannot undo
another's record. It runs until the stream is empty. Only a flood that outlasts the
task's time limit makes it hand over to a fresh task, which then waits its turn behind
the confirmations already queued; so the limit, not a shorter slice, bounds a drain.
"""

import logging
import uuid
from time import monotonic

from django.conf import settings
from django.db import DataError, IntegrityError

from subscriptions import intake
from subscriptions.models import SignupForm
from subscriptions.services.signup import SignupEntry, signup_record

logger = logging.getLogger(__name__)

BATCH = 100


def _drain_seconds() -> float:
    # A minute short of the soft time limit (which is at least 30 s).
    return max(settings.CELERY_TASK_SOFT_TIME_LIMIT - 60, settings.CELERY_TASK_SOFT_TIME_LIMIT / 2)


class DrainOutcome:
    """What one drain did: recorded, skipped (campaign ended, already recorded, form
    gone), dropped (unreadable), and whether entries remain for the next drain."""

    def __init__(self) -> None:
        self.recorded = self.skipped = self.dropped = 0
        self.more = False

    def as_dict(self) -> dict[str, int | bool]:
        return {"recorded": self.recorded, "skipped": self.skipped, "dropped": self.dropped, "more": self.more}


def signups_drain(*, seconds: float | None = None) -> DrainOutcome:
    """Record what the intake holds until it is empty or `seconds` pass (by default,
    nearly the task's time limit). A database
    outage raises (the caller retries): entries not yet recorded stay in the stream,
    and the next drain claims them once they have been held for intake.STALE_MS."""
    reader = f"drain-{uuid.uuid4().hex[:12]}"
    deadline = monotonic() + (seconds if seconds is not None else _drain_seconds())
    outcome = DrainOutcome()
    while True:
        entries = intake.read(consumer=reader, count=BATCH)
        if not entries:
            # Empty: the flag goes, atomically with the check. Otherwise what is left is in
            # another reader's hands, or a dead one's until it goes stale: the flag stays
            # until it expires, and beat's minutely drain picks up from there.
            intake.release()
            break
        intake.hold()
        _record_batch(entries, outcome)
        if monotonic() >= deadline:
            outcome.more = True
            break
    intake.forget_reader(reader)
    return outcome


def _record_batch(entries: list[tuple[str, str]], outcome: DrainOutcome) -> None:
    # Forms (with their campaign's status) are read once per batch: a campaign that ends
    # is seen by the next batch, a few milliseconds later.
    forms: dict[int, SignupForm | None] = {}
    finished: list[str] = []
    try:
        for entry_id, payload in entries:
            _record_one(entry_id, payload, forms, outcome)
            finished.append(entry_id)
    finally:
        # Even when a database outage stops the batch part-way, what was recorded is
        # deleted from the stream now; the rest waits for the next drain.
        intake.done(finished)


def _record_one(entry_id: str, payload: str, forms: dict[int, SignupForm | None], outcome: DrainOutcome) -> None:
    try:
        entry = SignupEntry.loads(payload)
    except (ValueError, TypeError, KeyError):
        # Written by a different version of this code, or damaged: it can never be read,
        # so keeping it would only block the stream. Its id is logged, never its content.
        logger.error("Dropped an unreadable sign-up intake entry %s", entry_id)
        outcome.dropped += 1
        return
    if entry.form_id not in forms:
        forms[entry.form_id] = SignupForm.objects.select_related("campaign").filter(pk=entry.form_id).first()
    form = forms[entry.form_id]
    if form is None:
        outcome.skipped += 1
        return
    try:
        recorded = signup_record(entry, form=form, intake_id=entry_id)
    except (IntegrityError, DataError) as error:
        # The row itself is refused (it cannot succeed on a retry either); a lost
        # connection or a database outage, by contrast, propagates and is retried. The
        # error's text may quote the row, so only its kind is logged.
        logger.error("Dropped a sign-up intake entry %s the database refused (%s)", entry_id, type(error).__name__)
        outcome.dropped += 1
        return
    if recorded:
        outcome.recorded += 1
    else:
        outcome.skipped += 1
