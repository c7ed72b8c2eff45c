"""signups_drain, the drain task's service: it reads the intake stream (stream.py) in
batches until it is empty (or nearly the task's time limit passes: then a fresh task
takes over), records each entry in its own transaction (record.py) so one bad entry
cannot undo another's record, and deletes a batch from Redis once one waiting commit
has made it durable. Why, and what happens when things fail:
docs/adr/0002-signup-intake-stream.md.
"""

import logging
import uuid
from time import monotonic

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction

from subscriptions.models import SignupForm
from subscriptions.services.signup import stream
from subscriptions.services.signup.entry import SignupEntry
from subscriptions.services.signup.record import signup_record

logger = logging.getLogger(__name__)

BATCH = 100
# A lost connection or a database that is down: stop, keep the entries, retry later.
# Anything else an entry raises is that entry's fault, and it is dropped.
TRANSIENT = (OperationalError, InterfaceError)


class DrainOutcome:
    """What one drain did: recorded, skipped (campaign ended, already recorded, form
    gone), dropped (unreadable or refused), and whether entries remain for the next."""

    def __init__(self) -> None:
        self.recorded = self.skipped = self.dropped = 0
        self.more = False

    def as_dict(self) -> dict[str, int | bool]:
        return {"recorded": self.recorded, "skipped": self.skipped, "dropped": self.dropped, "more": self.more}


def _drain_seconds() -> float:
    # A minute short of the soft time limit (which is at least 30 s).
    return max(settings.CELERY_TASK_SOFT_TIME_LIMIT - 60, settings.CELERY_TASK_SOFT_TIME_LIMIT / 2)


def signups_drain(*, reader: str | None = None, seconds: float | None = None) -> DrainOutcome:
    """Record what the intake holds until it is empty or `seconds` pass (by default,
    nearly the task's time limit).

    `reader` names this drain in the stream's consumer group; a retried task passes the
    same name and so reads again the entries its failed run left unrecorded. A database
    outage raises (the task retries): entries not yet recorded stay in the stream."""
    reader = reader or f"drain-{uuid.uuid4().hex[:12]}"
    deadline = monotonic() + (seconds if seconds is not None else _drain_seconds())
    outcome = DrainOutcome()
    try:
        _drain(reader, deadline, outcome)
    finally:
        stream.forget_reader(reader)
    return outcome


def _drain(reader: str, deadline: float, outcome: DrainOutcome) -> None:
    released_empty_handed = False
    while True:
        entries = stream.read(consumer=reader, count=BATCH)
        if not entries:
            if stream.release():
                return  # empty, and the flag is gone with it
            if released_empty_handed:
                # Still not empty, yet nothing to read twice over: what remains is in
                # another drain's hands (or a dead one's, until it goes stale). The flag
                # stays until it expires; beat's minutely drain picks up from there.
                return
            # An entry may have been appended after the read, while the flag still
            # stood (so it asked for no drain): read once more.
            released_empty_handed = True
            continue
        released_empty_handed = False
        stream.hold()
        _record_batch(entries, outcome)
        if monotonic() >= deadline:
            outcome.more = True
            return


def _record_batch(entries: list[tuple[str, str]], outcome: DrainOutcome) -> None:
    # Forms are read once per batch; each record re-checks its campaign under a lock.
    forms: dict[int, SignupForm | None] = {}
    finished: list[str] = []
    try:
        for entry_id, payload in entries:
            _record_one(entry_id, payload, forms, outcome)
            finished.append(entry_id)
    finally:
        # Even when a database outage stops the batch part-way, what was recorded is
        # made durable and then deleted from the stream; the rest waits for a retry.
        if finished:
            _wait_for_disk()
            stream.done(finished)


def _record_one(entry_id: str, payload: str, forms: dict[int, SignupForm | None], outcome: DrainOutcome) -> None:
    try:
        entry = SignupEntry.loads(stream.unseal(payload))
    except (ValueError, TypeError, KeyError):
        # Sealed under a key no longer configured, damaged, or written by a different
        # version of this code: it can never be read, so keeping it would only block the
        # stream. Its id is logged, never its content.
        logger.error("Dropped an unreadable sign-up intake entry %s", entry_id)
        outcome.dropped += 1
        return
    if entry.form_id not in forms:
        forms[entry.form_id] = SignupForm.objects.select_related("campaign").filter(pk=entry.form_id).first()
    form = forms[entry.form_id]
    if form is None:
        logger.warning("Skipped sign-up intake entry %s: its form no longer exists", entry_id)
        outcome.skipped += 1
        return
    try:
        recorded = signup_record(entry, form=form, intake_id=entry_id)
    except TRANSIENT:
        raise
    except Exception as error:  # noqa: BLE001 - see TRANSIENT
        # The error's text may quote the row, so only its kind is logged.
        logger.error("Dropped sign-up intake entry %s: recording it failed (%s)", entry_id, type(error).__name__)
        outcome.dropped += 1
        return
    if recorded:
        outcome.recorded += 1
    else:
        outcome.skipped += 1


def _wait_for_disk() -> None:
    """One commit that waits for the write-ahead log to reach disk, and with it every
    commit before it, which did not wait."""
    if connection.vendor != "postgresql":
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO ON")
        cursor.execute("SELECT pg_current_xact_id()")
