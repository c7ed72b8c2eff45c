"""Daily aggregate counts: every flow adds to them, and they outlive every erasure."""

import datetime

import pytest
from django.core import mail

from subscriptions.models import ConsentEvent, Delivery, Mailing, Subscriber
from subscriptions.services import lifecycle, reconfirmation
from subscriptions.services.erasure import subscriber_erase
from subscriptions.services.sending.claims import deliveries_mark
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.reconcile import delivery_reconcile
from subscriptions.services.sending.records import Result
from subscriptions.services.signup.confirm import signup_confirm
from subscriptions.services.signup.request import signup_request
from subscriptions.services.stats import DayCount, stats_by_day, stats_totals
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from tests.support.factories import CampaignFactory, SignupFormFactory, TopicFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 3, 2)
NOON = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def campaign():
    return CampaignFactory(ends_on=datetime.date(2026, 12, 31), reconfirm_after_days=365)


@pytest.fixture
def topic(campaign):
    return TopicFactory(campaign=campaign)


def sign_up_and_confirm(campaign, topic, email: str) -> Subscriber:
    form = SignupFormFactory.create(campaign=campaign, topics=[topic])
    signup_request(
        form=form, email=email, first_name="Sam", topics=[topic], attributes={}, source=ConsentEvent.Source.PAGE
    )
    subscriber = Subscriber.objects.get(email=email)
    request = ConsentEvent.objects.get(subscriber=subscriber, kind=ConsentEvent.Kind.REQUESTED)
    signup_confirm(subscriber_id=subscriber.pk, event_id=request.pk)
    return subscriber


def totals(campaign, topic_id=None) -> dict[str, int]:
    return stats_totals(campaign_id=campaign.pk, since=DAY, until=DAY + datetime.timedelta(days=400), topic_id=topic_id)


def test_every_flow_counts_and_the_counts_survive_the_campaigns_erasure(campaign, topic, time_machine):
    time_machine.move_to(NOON, tick=False)
    people = [sign_up_and_confirm(campaign, topic, f"person{i}@example.com") for i in range(4)]
    mailing = Mailing.objects.create(campaign=campaign, subject="News", body="Hello", status=Mailing.Status.SENDING)
    mailing.topics.set([topic])
    mailing_fan_out(mailing=mailing)
    deliveries = list(Delivery.objects.filter(mailing=mailing).order_by("subscriber_id"))
    Delivery.objects.filter(mailing=mailing).update(status="sending")
    deliveries_mark(mailing_id=mailing.pk, campaign_id=campaign.pk, results={d.pk: Result("sent") for d in deliveries})
    delivery_reconcile(delivery_id=deliveries[0].pk, event="bounced")
    delivery_reconcile(delivery_id=deliveries[1].pk, event="complained")
    subscriber_withdraw(subscriber_id=people[2].pk, reason=WithdrawalReason.ONE_CLICK, source="email", erase=False)
    subscriber_erase(subscriber_id=people[2].pk, reason=WithdrawalReason.ONE_CLICK)

    time_machine.move_to(datetime.datetime(2027, 1, 1, 0, 5, tzinfo=datetime.UTC), tick=False)
    lifecycle.campaigns_end_due()

    assert totals(campaign) == {
        "signups": 4, "confirmations": 4, "sends": 4, "bounces": 1, "complaints": 1, "withdrawals": 1, "erasures": 4,
    }  # fmt: skip
    assert totals(campaign, topic_id=topic.pk) == {"confirmations": 4}
    erasures = [row for row in stats_by_day(campaign_id=campaign.pk, since=DAY, until=DAY) if row.metric == "erasures"]
    assert erasures == [DayCount(DAY, "erasures", "one_click", 1)]
    assert [(row.day, row.reason, row.count) for row in stats_by_day(
        campaign_id=campaign.pk, since=datetime.date(2027, 1, 1), until=datetime.date(2027, 1, 1)
    )] == [(datetime.date(2027, 1, 1), "campaign_ended", 3)]  # fmt: skip


def test_reconfirmations_and_lapses_are_counted(campaign, topic, time_machine):
    time_machine.move_to(NOON, tick=False)
    keeper, leaver = (sign_up_and_confirm(campaign, topic, f"{name}@example.com") for name in ("keeper", "leaver"))
    time_machine.move_to(NOON + datetime.timedelta(days=366), tick=False)
    reconfirmation.reconfirmation_sweep()
    assert len(mail.outbox) >= 2
    reconfirmation.subscriber_reconfirm(subscriber_id=keeper.pk)

    time_machine.move_to(NOON + datetime.timedelta(days=366 + 30), tick=False)
    reconfirmation.reconfirmation_sweep()

    counts = totals(campaign)
    assert (counts["reconfirmations"], counts["lapses"], counts["erasures"]) == (1, 1, 1)
    assert not Subscriber.objects.filter(pk=leaver.pk).exists()
