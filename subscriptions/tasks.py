"""Celery entry points: take ids, call one service. The database is the record.

Each task is idempotent (acks_late may deliver it twice) and names its queue:
`transactional` for one person's mail and data, `bulk` for mailings and sweeps.
"""

from celery import shared_task

from subscriptions.services import (
    preference_emails,
    retention,
    sending,
    signup_emails,
    withdrawal,
)


@shared_task(
    name="subscriptions.erase_subscriber",
    queue="transactional",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def erase_subscriber(subscriber_id: int, reason: str) -> None:
    withdrawal.subscriber_erase(subscriber_id=subscriber_id, reason=withdrawal.WithdrawalReason(reason))


# Beat runs this every 15 minutes (config/celery.py); a failed run is simply retried
# by the next one, so it has no retries of its own.
@shared_task(name="subscriptions.expire_pending_signups", queue="bulk", max_retries=0)
def expire_pending_signups() -> int:
    return retention.pending_signups_expire()


@shared_task(
    name="subscriptions.send_signup_confirmation",
    queue="transactional",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_signup_confirmation(event_id: int) -> None:
    signup_emails.signup_confirmation_send(event_id=event_id)


@shared_task(
    name="subscriptions.send_welcome",
    queue="transactional",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_welcome(subscriber_id: int, topic_ids: list[int]) -> None:
    signup_emails.welcome_send(subscriber_id=subscriber_id, topic_ids=topic_ids)


@shared_task(name="subscriptions.dispatch_due_mailings", queue="bulk", max_retries=0)
def dispatch_due_mailings() -> int:
    return sending.mailings_dispatch_due()


# No autoretry: a send task that dies leaves its claims to the sweeper (-> unknown)
# and its queued deliveries to the next task the sweeper starts; retrying here could
# only ever resend.
@shared_task(name="subscriptions.send_batch", queue="bulk", max_retries=0)
def send_batch(mailing_id: int) -> dict[str, int]:
    return dict(sending.mailing_send_batches(mailing_id=mailing_id))


@shared_task(name="subscriptions.sweep_deliveries", queue="bulk", max_retries=0)
def sweep_deliveries() -> dict[str, int]:
    return sending.deliveries_sweep()


@shared_task(
    name="subscriptions.send_manage_link",
    queue="transactional",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_manage_link(subscriber_id: int) -> None:
    preference_emails.manage_link_send(subscriber_id=subscriber_id)


@shared_task(
    name="subscriptions.send_email_change_confirmation",
    queue="transactional",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_email_change_confirmation(event_id: int) -> None:
    preference_emails.email_change_confirmation_send(event_id=event_id)


@shared_task(
    name="subscriptions.send_email_changed_notice",
    queue="transactional",
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def send_email_changed_notice(event_id: int) -> None:
    preference_emails.email_changed_notice_send(event_id=event_id)

