"""One send task's run: claim, send and mark batches of a mailing until none is left or
its time is up, then hand over to a fresh task or complete the mailing."""

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from subscriptions.mail.letter import Letter
from subscriptions.mail.render import mailing_compile
from subscriptions.mail.transports.base import Transport
from subscriptions.mail.transports.choose import transport_for
from subscriptions.models import ConsentEvent, Delivery, Mailing
from subscriptions.services.sending.batch import BatchOutcome, batch_send
from subscriptions.services.sending.claims import (
    claim_size,
    deliveries_claim,
    deliveries_mark,
    mailing_complete_if_done,
)
from subscriptions.services.sending.pause import mailing_pause, mailing_resume
from subscriptions.services.sending.records import Claimed, Result
from subscriptions.services.sending.send_tasks import enqueue_send_tasks, heartbeat_set
from subscriptions.services.sending.stop import campaign_can_send, mailing_stop
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw

logger = logging.getLogger(__name__)

BULK_MAILER = "default"
# How long one task keeps claiming batches before handing over to a fresh task.
TASK_SECONDS = 60.0
# After the ESP looks down, the mailing rests this long before the sweeper restarts it.
ESP_DOWN_REST_SECONDS = 60


@dataclass
class _Run:
    after: int  # the key the last claim ended at
    totals: Counter[str] = field(default_factory=Counter)
    stopped: bool = False  # a batch stopped: the mailing rests (or pauses)
    out_of_time: bool = False


def mailing_send_batches(*, mailing_id: int, after: int = 0, seconds: float = TASK_SECONDS) -> Counter[str]:
    """Claim, send and mark batches of one mailing until none is left or time is up.

    Claims go on from the key the last one ended at (`after`, handed over between
    tasks). When nothing is left past it, one claim from the mailing's first key picks
    up what was given back behind it (a batch another task stopped) before giving up.
    """
    mailing = Mailing.objects.select_related("campaign").get(pk=mailing_id)
    if mailing.status != Mailing.Status.SENDING:
        return Counter()
    if not campaign_can_send(mailing.campaign):
        mailing_stop(mailing=mailing, reason="the campaign has ended")
        return Counter()
    letter = Letter(compiled=mailing_compile(mailing=mailing), campaign=mailing.campaign)
    transport = transport_for(alias=BULK_MAILER, letter=letter)
    run = _Run(after=after)
    try:
        _batches_send(mailing, transport, letter, run, deadline=time.monotonic() + seconds)
    finally:
        transport.close()
    if run.out_of_time:
        enqueue_send_tasks(mailing_id=mailing_id, count=1, after=run.after)
    elif not run.stopped:
        mailing_complete_if_done(mailing_id=mailing_id)
    return run.totals


def _batches_send(mailing: Mailing, transport: Transport, letter: Letter, run: _Run, *, deadline: float) -> None:
    """Batch after batch, beating the heartbeat, until a stop, the deadline, or nothing left."""
    while True:
        heartbeat_set(mailing_id=mailing.pk)
        if Mailing.objects.filter(pk=mailing.pk, status=Mailing.Status.SENDING).count() == 0:
            return  # cancelled meanwhile
        claimed = _claim_next(mailing, run)
        if not claimed:
            return
        outcome = batch_send(claimed=claimed, transport=transport, letter=letter)
        run.totals += _batch_record(mailing, claimed, outcome)
        if outcome.stop:
            heartbeat_set(mailing_id=mailing.pk, seconds=ESP_DOWN_REST_SECONDS)
            run.stopped = True
            return
        if time.monotonic() > deadline:
            run.out_of_time = True
            return


def _claim_next(mailing: Mailing, run: _Run) -> list[Claimed]:
    """The next batch past `run.after`, else (once) from the mailing's first key."""
    claimed = deliveries_claim(mailing=mailing, limit=claim_size(), after=run.after)
    if not claimed and run.after:
        run.after = 0
        claimed = deliveries_claim(mailing=mailing, limit=claim_size())
    if claimed:
        run.after = claimed[-1].delivery_id
    return claimed


def _batch_record(mailing: Mailing, claimed: list[Claimed], outcome: BatchOutcome) -> Counter[str]:
    """Mark the batch, withdraw whom the server refused for good, pause or end a pause."""
    counts = deliveries_mark(mailing_id=mailing.pk, campaign_id=mailing.campaign_id, results=outcome.results)
    _withdraw_refused(claimed, outcome.results)
    # A batch stopped on our configuration pauses the mailing; one that sent someone ends a pause.
    if outcome.paused:
        mailing_pause(mailing=mailing, reason=outcome.paused)
    elif counts[Delivery.Status.SENT]:
        mailing_resume(mailing=mailing)
    return counts


def _withdraw_refused(claimed: list[Claimed], results: dict[int, Result]) -> None:
    """An address the receiving server refused for good has bounced: withdraw, erase and
    suppress the person as an ESP's hard bounce does (services.webhooks). Logged by
    delivery id, never by address."""
    for row in claimed:
        result = results.get(row.delivery_id)
        if result is None or not result.refused:
            continue
        logger.info("delivery %s: %s; withdrawn as a hard bounce", row.delivery_id, result.error)
        subscriber_withdraw(
            subscriber_id=row.subscriber_id, reason=WithdrawalReason.HARD_BOUNCE, source=ConsentEvent.Source.ESP
        )
