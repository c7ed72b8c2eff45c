"""Sending one claimed batch: each person's copy (mail.letter.Copy), the calls to the
transport within the rate limit, and the fault and retry loop that settles every
person's `Result`."""

import time
from dataclasses import dataclass, field
from itertools import takewhile

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from subscriptions.mail.letter import Copy, Letter
from subscriptions.mail.mime import UnsendableAddress, envelope_address
from subscriptions.mail.render import link_pattern
from subscriptions.mail.transports.base import (
    Ambiguous,
    Misconfigured,
    Outcomes,
    Permanent,
    RateLimited,
    Refused,
    SendFault,
    Transient,
    Transport,
    unexpected_fault,
)
from subscriptions.models import Delivery
from subscriptions.services.sending.ratelimit import RateLimitTimeout, ratelimit_pause, ratelimit_take
from subscriptions.services.sending.records import Claimed, Result
from subscriptions.tokens import LinkPurpose, make_link_token_for

# Transient failures in a row, each after its retries, that mean the ESP is down.
ESP_DOWN_AFTER = 2
MIN_RATE_LIMIT_WAIT = 1.0  # seconds, whatever Retry-After says


def backoff_seconds(attempt: int, *, base: float, cap: float = 30.0) -> float:
    return float(min(base * (2**attempt), cap))


def pause(seconds: float) -> None:
    """One place that sleeps, so the waiting is visible in one line of a profile."""
    if seconds > 0:
        time.sleep(seconds)


@dataclass
class BatchOutcome:
    results: dict[int, Result] = field(default_factory=dict)
    stop: bool = False
    paused: str = ""  # why: a fault of our configuration (transports.Misconfigured) stopped the batch


@dataclass
class _Loop:
    """Where batch_send has got to: who is left, and what the faults so far allow."""

    transport: Transport
    outcome: BatchOutcome
    pending: list[Copy]
    largest_call: int | None
    slots: int = 0  # granted by the rate limit and not used yet
    down_in_a_row: int = 0
    retries: int = 0
    waited: float = 0.0  # on rate limits since someone was last done with


def batch_send(*, claimed: list[Claimed], transport: Transport, letter: Letter) -> BatchOutcome:
    """Send a claimed batch through every fault the ESP may raise, one slot per person.

    Each call carries as many people as the transport takes and the bucket granted.
    Whatever a call leaves unfinished (rate limited, transient, not tried) stays at the
    front with its slot and goes again: a 429 waits as told, a transient fault backs off,
    up to SEND_RETRIES, and then fails the people it concerns. A fault of our
    configuration (transports.Misconfigured, or an exception that is no SendFault)
    fails no one: whoever is not done goes back to the queue and the mailing pauses.
    """
    outcome = BatchOutcome()
    pending = _copies(claimed, letter, outcome)
    loop = _Loop(transport=transport, outcome=outcome, pending=pending, largest_call=transport.max_recipients)
    while loop.pending and not outcome.stop:
        if loop.slots == 0 and not _slots_take(loop):
            break
        call = loop.pending[: min(loop.slots, loop.largest_call or loop.slots)]
        outcomes = _send_call(transport, call)
        finished, faulted = _settle(call, outcomes)
        misconfigured = _misconfigured(call[len(finished) :], outcomes)
        if not finished and not faulted and misconfigured is None:
            # Every transport answers for at least the first person; looping would spin.
            raise RuntimeError(f"{transport.name} answered for nobody in a call of {len(call)}")
        _finished_record(loop, finished)
        if misconfigured is not None:
            # Every message would meet it: fail no one, pause (see pause.mailing_pause).
            outcome.stop, outcome.paused = True, str(misconfigured)
            _give_back(outcome, loop.pending, f"sending paused: {misconfigured}")
        elif faulted:
            _fault_handle(loop, faulted, outcomes[faulted[0].delivery_id])
    return outcome


def _slots_take(loop: _Loop) -> bool:
    """Wait for send slots for the people left; False, giving them back, when none came in time."""
    wanted = min(len(loop.pending), settings.SEND_RATE_BURST)
    try:
        loop.slots = ratelimit_take(mailer=loop.transport.name, count=wanted)
    except RateLimitTimeout:
        loop.outcome.stop = True
        _give_back(loop.outcome, loop.pending, "no send slot in time")
        return False
    return True


def _finished_record(loop: _Loop, finished: list[tuple[Copy, Result]]) -> None:
    loop.pending = loop.pending[len(finished) :]
    loop.slots -= len(finished)
    for item, result in finished:
        loop.outcome.results[item.delivery_id] = result
    if finished:
        loop.down_in_a_row = 0
        loop.retries, loop.waited = 0, 0.0


def _fault_handle(loop: _Loop, faulted: list[Copy], fault: str | SendFault) -> None:
    """The call stopped at a rate limit or a transient fault: wait, retry, go on one
    person per call, or fail the first person and, when the ESP looks down, stop."""
    if isinstance(fault, RateLimited):
        _rate_limited(loop, fault)
    elif loop.retries < settings.SEND_RETRIES:
        pause(backoff_seconds(loop.retries, base=settings.SEND_RETRY_BACKOFF_SECONDS))
        loop.retries += 1
    elif len(faulted) > 1:
        # Nothing in the call was sent. Go on one person per call: a fault of the
        # ESP then stops the batch after ESP_DOWN_AFTER people, as it does for
        # one-message transports, and a fault of one big payload fails nobody else.
        loop.largest_call, loop.retries = 1, 0
    else:
        _failed_as_down(loop, faulted[0], fault)


def _rate_limited(loop: _Loop, fault: RateLimited) -> None:
    # At least a second, so "Retry-After: 0" (or a date gone by) cannot spin.
    wait = max(fault.retry_after or 0.0, MIN_RATE_LIMIT_WAIT)
    ratelimit_pause(mailer=loop.transport.name, seconds=wait)
    if loop.waited + wait <= settings.SEND_LEASE_SECONDS / 4:
        loop.waited += wait
        pause(wait)
        return
    # A longer wait than a lease allows: nothing of the rest was sent, so give it
    # all back and stop; the paused bucket holds every worker off meanwhile.
    loop.outcome.stop = True
    _give_back(loop.outcome, loop.pending, "rate limited by the ESP")


def _failed_as_down(loop: _Loop, item: Copy, fault: str | SendFault) -> None:
    """Out of retries: the person fails, and after ESP_DOWN_AFTER in a row the batch stops."""
    loop.outcome.results[item.delivery_id] = Result(Delivery.Status.FAILED, error=str(fault), esp_down=True)
    loop.down_in_a_row += 1
    loop.pending = loop.pending[1:]
    loop.slots -= 1
    loop.retries, loop.waited = 0, 0.0
    if loop.down_in_a_row >= ESP_DOWN_AFTER:
        # The ESP is down, not these addresses: stop failing people and rest.
        loop.outcome.stop = True
        _give_back(loop.outcome, loop.pending, "the ESP looked down; sent again later")


def _copies(claimed: list[Claimed], letter: Letter, outcome: BatchOutcome) -> list[Copy]:
    """The claimed people to send to, in order; the rest get their result in `outcome`."""
    pending: list[Copy] = []
    unsubscribe, manage = link_pattern(name="unsubscribe"), link_pattern(name="manage")
    for row in claimed:
        if not row.eligible:
            outcome.results[row.delivery_id] = Result(Delivery.Status.SKIPPED, error="no longer subscribed")
            continue
        try:
            address = envelope_address(row.email)
        except UnsendableAddress as error:
            outcome.results[row.delivery_id] = Result(Delivery.Status.FAILED, error=str(error))
            continue
        pending.append(
            Copy(
                delivery_id=row.delivery_id,
                address=address,
                first_name=row.first_name,
                unsubscribe_url=_link(unsubscribe, LinkPurpose.UNSUBSCRIBE, row),
                manage_url=_link(manage, LinkPurpose.MANAGE, row),
                message_id=letter.message_id(row.delivery_id),
            )
        )
    return pending


def _link(pattern: tuple[str, str], purpose: LinkPurpose, row: Claimed) -> str:
    prefix, suffix = pattern
    token = make_link_token_for(purpose=purpose, subscriber_id=row.subscriber_id, link_key=row.link_key)
    return f"{prefix}{token}{suffix}"


def _send_call(transport: Transport, call: list[Copy]) -> Outcomes:
    """One transport call. An exception that is no SendFault (a bad mailer option, a bug
    of ours) pauses the mailing with everyone in the call given back, not failed.

    Safe enough, because such exceptions come from our side before the ESP could act:
    building the payload, an option the backend or requests cannot use (issue 16's
    string timeout raised before connecting). Every failure the ESP itself answers is
    a SendFault (transports.anymail_fault). The rare ambiguity: a backend that raises
    something else while reading a 2xx answer had the message accepted, and those in
    the call are sent again on resuming; a duplicate, where failing them all, or
    leaving them unknown, would make everyone miss the mailing for one bad setting.
    One-message transports answer such an exception per person (transports.send_each),
    so whoever was sent before it in the call keeps their answer."""
    try:
        return transport.send_many(call)
    except SoftTimeLimitExceeded:  # the task is out of time: its claims expire as for a lost worker
        raise
    except Exception as error:  # noqa: BLE001 - see above
        fault = unexpected_fault(error)
        return {item.delivery_id: fault for item in call}


def _misconfigured(unfinished: list[Copy], outcomes: Outcomes) -> Misconfigured | None:
    """The fault that stopped the call, when it is one of our configuration."""
    answer = outcomes.get(unfinished[0].delivery_id) if unfinished else None
    return answer if isinstance(answer, Misconfigured) else None


def _settle(call: list[Copy], outcomes: Outcomes) -> tuple[list[tuple[Copy, Result]], list[Copy]]:
    """Split a call's answer: the people done with (in order), then those its ESP fault concerns.

    A transport answers in order and stops at a rate-limit or transient fault, so the
    done come first; whoever follows them unanswered was not tried.
    """
    finished: list[tuple[Copy, Result]] = []
    for item in call:
        answer = outcomes.get(item.delivery_id)
        if isinstance(answer, str):
            # Stored as webhooks are matched (reconcile._find): without angle brackets.
            finished.append((item, Result(Delivery.Status.SENT, esp_message_id=answer.strip("<>")[:200])))
        elif isinstance(answer, Refused):
            finished.append((item, Result(Delivery.Status.FAILED, error=str(answer), refused=True)))
        elif isinstance(answer, Permanent):
            finished.append((item, Result(Delivery.Status.FAILED, error=str(answer))))
        elif isinstance(answer, Ambiguous):
            finished.append((item, Result(Delivery.Status.UNKNOWN, error=str(answer))))
        else:
            break
    rest = call[len(finished) :]
    faulted = list(takewhile(lambda item: isinstance(outcomes.get(item.delivery_id), RateLimited | Transient), rest))
    return finished, faulted


def _give_back(outcome: BatchOutcome, items: list[Copy], reason: str) -> None:
    for item in items:
        outcome.results[item.delivery_id] = Result(Delivery.Status.QUEUED, error=reason)
