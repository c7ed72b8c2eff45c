"""Celery entry points: take ids, call one service. The database is the record.

Each task is idempotent (acks_late may deliver it twice); config/celery.py routes it to
`transactional` for one person's mail and data, `bulk` for mailings and sweeps.
"""

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from subscriptions import audit
from subscriptions.services import (
    erasure,
    inbound,
    lifecycle,
    preference_emails,
    reconfirmation,
    retention,
    webhooks,
    withdrawal,
)
from subscriptions.services.sending.run import mailing_send_batches
from subscriptions.services.sending.start import mailings_dispatch_due
from subscriptions.services.sending.sweep import deliveries_sweep
from subscriptions.services.signup import drain, emails


@shared_task(
    name="subscriptions.erase_subscriber",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def erase_subscriber(subscriber_id: int, reason: str) -> None:
    erasure.subscriber_erase(subscriber_id=subscriber_id, reason=withdrawal.WithdrawalReason(reason))


# Beat runs this every 15 minutes (config/celery.py); a failed run is simply retried
# by the next one, so it has no retries of its own.
@shared_task(name="subscriptions.expire_pending_signups", max_retries=0)
def expire_pending_signups() -> int:
    retention.email_change_addresses_forget()
    return retention.pending_signups_expire()


# Asked for by the sign-up that finds no drain on its way, and by beat every minute as
# a safety net. A database or Redis outage is retried with backoff; entries wait in
# the stream meanwhile.
@shared_task(
    bind=True,
    name="subscriptions.drain_signups",
    autoretry_for=(OperationalError, InterfaceError, RedisConnectionError),
    retry_backoff=True,
    max_retries=8,
)
def drain_signups(self: Task) -> dict[str, int | bool]:
    # Retries keep the task id, and so the reader name: a retry reads again the entries
    # the failed run left unrecorded, without waiting for them to go stale.
    outcome = drain.signups_drain(reader=f"drain-{self.request.id}" if self.request.id else None)
    if outcome.more:  # a flood: hand over to a fresh task rather than hold this process
        drain_signups.delay()
    return outcome.as_dict()


@shared_task(
    name="subscriptions.send_signup_confirmation",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_signup_confirmation(event_id: int) -> None:
    emails.signup_confirmation_send(event_id=event_id)


@shared_task(
    name="subscriptions.send_welcome",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_welcome(subscriber_id: int, topic_ids: list[int]) -> None:
    emails.welcome_send(subscriber_id=subscriber_id, topic_ids=topic_ids)


@shared_task(name="subscriptions.dispatch_due_mailings", max_retries=0)
def dispatch_due_mailings() -> int:
    return mailings_dispatch_due()


# No autoretry: a send task that dies leaves its claims to the sweeper (-> unknown)
# and its queued deliveries to the next task the sweeper starts; retrying here could
# only ever resend.
@shared_task(name="subscriptions.send_batch", max_retries=0)
def send_batch(mailing_id: int, after: int = 0) -> dict[str, int]:
    return dict(mailing_send_batches(mailing_id=mailing_id, after=after))


@shared_task(name="subscriptions.sweep_deliveries", max_retries=0)
def sweep_deliveries() -> dict[str, int]:
    return deliveries_sweep()


@shared_task(
    name="subscriptions.send_manage_link",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_manage_link(campaign_id: int, hashed_email: str) -> None:
    preference_emails.manage_link_send(campaign_id=campaign_id, hashed_email=hashed_email)


@shared_task(
    name="subscriptions.send_email_change_confirmation",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_email_change_confirmation(event_id: int) -> None:
    preference_emails.email_change_confirmation_send(event_id=event_id)


# The notice needs the old address, which is kept for nothing else: once sending has
# failed for good, the address is forgotten unsent.
@shared_task(bind=True, name="subscriptions.send_email_changed_notice", max_retries=5)
def send_email_changed_notice(self, event_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        preference_emails.email_changed_notice_send(event_id=event_id)
    except (ConnectionError, TimeoutError, OSError) as error:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=error, countdown=30 * 2**self.request.retries) from error
        preference_emails.email_changed_notice_forget(event_id=event_id)
        raise
    except Exception:
        preference_emails.email_changed_notice_forget(event_id=event_id)
        raise


# The acknowledgement needs the address that erasure removes, so this task sends it
# and then erases. Sending is retried; after the last attempt the person is erased
# unacknowledged, because erasure must never wait on mail.
@shared_task(
    bind=True,
    name="subscriptions.acknowledge_inbound_unsubscribe",
    max_retries=5,
)
def acknowledge_inbound_unsubscribe(self, subscriber_id: int) -> None:  # type: ignore[no-untyped-def]
    erase = True
    try:
        inbound.inbound_unsubscribe_acknowledge(subscriber_id=subscriber_id)
    except (ConnectionError, TimeoutError, OSError) as error:
        if self.request.retries < self.max_retries:
            erase = False  # the retry erases
            raise self.retry(exc=error, countdown=30 * 2**self.request.retries) from error
    finally:
        # Any other failure (a refused recipient, a template error) still erases.
        if erase:
            erasure.subscriber_erase(subscriber_id=subscriber_id, reason=withdrawal.WithdrawalReason.INBOUND_EMAIL)


# Daily from beat; a missed run only leaves some old event ids a day longer.
@shared_task(name="subscriptions.prune_webhook_events", max_retries=0)
def prune_webhook_events() -> int:
    return webhooks.webhook_events_prune()


# Daily from beat: the audit trail's retention, the one deletion its trigger allows.
@shared_task(name="subscriptions.audit_retention", max_retries=0)
def audit_retention() -> int:
    return audit.audit_retention_purge()


# Hourly from beat: a campaign is ended and erased in the first run after its last
# day. A failed or overlapping run changes nothing twice (advisory lock, state
# guards), and the next run finishes what it left.
@shared_task(name="subscriptions.end_campaigns", max_retries=0)
def end_campaigns() -> int:
    return sum(result.erased for result in lifecycle.campaigns_end_due())


# Queued when staff confirm an end date that has already passed, so the erasure they
# confirmed starts at once instead of at the next hourly run.
@shared_task(name="subscriptions.end_campaign", max_retries=0)
def end_campaign(campaign_id: int) -> int:
    return lifecycle.campaign_end(campaign_id=campaign_id).erased


# Hourly from beat: queue reconfirmation emails and reminders, lapse the unanswered.
@shared_task(name="subscriptions.reconfirmation_sweep", max_retries=0)
def reconfirmation_sweep() -> dict[str, int]:
    run = reconfirmation.reconfirmation_sweep()
    return {"asked": run.asked, "reminded": run.reminded, "lapsed": run.lapsed}


@shared_task(
    name="subscriptions.send_reconfirmation",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_reconfirmation(subscriber_id: int, reminder: bool) -> None:
    reconfirmation.reconfirmation_send(subscriber_id=subscriber_id, reminder=reminder)


# Every 15 minutes from beat: erase anyone whose erasure after withdrawal was missed.
@shared_task(name="subscriptions.erase_withdrawn", max_retries=0)
def erase_withdrawn() -> int:
    return retention.withdrawn_erase()


# Daily from beat: old delivery rows, the retention limit, erasures a hold delayed.
@shared_task(name="subscriptions.retention_sweep", max_retries=0)
def retention_sweep() -> dict[str, int]:
    return retention.retention_sweep()
