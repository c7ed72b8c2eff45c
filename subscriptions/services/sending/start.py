"""Starting mailings: the beat's dispatch of those due, and one mailing's start (fan it
out, set its send tasks going), or what becomes of it when the start fails."""

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import mailers
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from subscriptions.models import Mailing
from subscriptions.services.mailings import mailing_start_failed
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.run import BULK_MAILER
from subscriptions.services.sending.send_tasks import enqueue_send_tasks
from subscriptions.services.sending.stop import campaign_can_send

logger = logging.getLogger(__name__)


def mailing_start(*, mailing_id: int) -> bool:
    """Fan a due mailing out and set its send tasks going. Only one caller ever wins."""
    with transaction.atomic():
        mailing = (
            Mailing.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(pk=mailing_id, status=Mailing.Status.SCHEDULED, scheduled_at__lte=timezone.now())
            .first()
        )
        if mailing is None:
            return False
        if not campaign_can_send(mailing.campaign):
            Mailing.objects.filter(pk=mailing.pk).update(status=Mailing.Status.CANCELLED, finished_at=timezone.now())
            logger.warning("mailing %s cancelled: its campaign has ended", mailing.pk)
            return False
        # A mailer that cannot even be built (a missing package or setting) fails here,
        # before anyone is queued, rather than in every send task, leaving people unknown.
        mailers[BULK_MAILER].close()
        count = mailing_fan_out(mailing=mailing)
        now = timezone.now()
        status = Mailing.Status.SENDING if count else Mailing.Status.SENT
        Mailing.objects.filter(pk=mailing.pk).update(
            status=status, started_at=now, recipients_count=count, finished_at=None if count else now
        )
        if count:
            transaction.on_commit(lambda: enqueue_send_tasks(mailing_id=mailing.pk, count=settings.SEND_PARALLELISM))
    return True


def mailings_dispatch_due() -> int:
    """Start every mailing whose time has come (the beat calls this; no long countdowns)."""
    due = Mailing.objects.filter(status=Mailing.Status.SCHEDULED, scheduled_at__lte=timezone.now())
    started = 0
    for pk in due.order_by("scheduled_at").values_list("pk", flat=True)[:50]:
        try:
            started += mailing_start(mailing_id=pk)
        except SoftTimeLimitExceeded:  # the task is out of time: stop here, gracefully
            raise
        except Exception as error:
            # One mailing must not hold up those behind it.
            if _passes_by_itself(error):
                # Its start rolled back and it stays scheduled: the next beat tries it
                # again (a fan-out that failed part-way is completed then).
                logger.exception("mailing %s: starting it failed; the next beat takes it up", pk)
            else:
                _start_failed(pk, error)
    return started


def _passes_by_itself(error: Exception) -> bool:
    """A database that is away (or SQLite busy) comes back. SQLite also raises
    OperationalError for SQL it cannot run, which never passes."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    return connection.vendor == "postgresql" or "locked" in str(error)


def _start_failed(mailing_id: int, error: Exception) -> None:
    """A start that fails for a reason that will not pass by itself (configuration, a
    bug) goes back to draft with the reason where staff look (mailings.mailing_start_failed).
    If only queueing its send tasks failed, after commit, it had started: the sweeper
    queues them."""
    if mailing_start_failed(mailing_id=mailing_id, error=error):
        logger.exception("mailing %s could not start; it is a draft again", mailing_id)
    else:
        logger.exception("mailing %s: after it started, queueing its send tasks failed; the sweeper does", mailing_id)
