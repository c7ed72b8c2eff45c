"""signup_request: a validated sign-up, admitted under the rate limits and appended to
the intake stream in one Redis round trip (stream.py), for a drain to record a moment
later (drain.py, record.py). Without Redis (the demo) it is recorded at once."""

import logging
from typing import Any

from django.utils import timezone

from subscriptions import abuse, selectors
from subscriptions.addresses import normalise_email
from subscriptions.models import ConsentEvent, PrivacyNotice, SignupForm, Topic
from subscriptions.services.enqueue import enqueue
from subscriptions.services.signup import stream
from subscriptions.services.signup.entry import SignupEntry
from subscriptions.services.signup.record import signup_record

logger = logging.getLogger(__name__)


class CampaignClosed(Exception):
    """The campaign has ended: it takes no sign-ups and confirms none."""


def signup_request(
    *,
    form: SignupForm,
    email: str,
    first_name: str,
    topics: list[Topic],
    attributes: dict[str, Any],
    source: ConsentEvent.Source,
    client_ip: str | None = None,
    privacy_notice: PrivacyNotice | None = None,
) -> None:
    """Accept a sign-up, or raise abuse.RateLimited (having changed nothing) when the
    client or the address is over a limit, or CampaignClosed.

    `privacy_notice` is the campaign's current notice when the caller already has it
    (the sign-up page reads it with the form); otherwise it is looked up here."""
    campaign = form.campaign
    if not campaign.is_active:
        raise CampaignClosed
    email = normalise_email(email)
    if privacy_notice is None:  # a caller without a cached notice (or a campaign without one)
        privacy_notice = selectors.privacy_notice_current(campaign=campaign)
    entry = SignupEntry(
        form_id=form.pk,
        privacy_notice_id=privacy_notice.pk if privacy_notice else None,
        email=email,
        first_name=first_name,
        topic_ids=[topic.pk for topic in topics],
        attributes=attributes,
        source=str(source),
        requested_at=timezone.now(),
    )
    if not stream.enabled():
        abuse.claim_confirmation_email(campaign_id=campaign.pk, email=email, ip=client_ip)
        signup_record(entry, form=form)
        return
    _append(entry, campaign_id=campaign.pk, client_ip=client_ip)


def _append(entry: SignupEntry, *, campaign_id: int, client_ip: str | None) -> None:
    """Admit and append the entry in one Redis step, so the request never waits on
    PostgreSQL; ask for a drain when none is on its way."""
    checks = abuse.signup_checks(ip=client_ip, campaign_id=campaign_id, email=entry.email)
    if stream.append(entry.dumps(), checks=checks):
        try:
            enqueue("subscriptions.drain_signups")
        except Exception:  # the sign-up is accepted: beat's drain records it
            logger.exception("Could not queue a sign-up drain; the minutely drain will record the sign-up")
