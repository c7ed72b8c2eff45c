"""The demo's generated history: counts only, the same every run, never doubled, demo only."""

import datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db.models import Sum

from subscriptions.models import Campaign, ConsentEvent, DailyStat, Delivery, Mailing, Subscriber, Subscription
from subscriptions.services.campaign_summary import campaign_summaries
from subscriptions.services.presets import presets_load
from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2030, 3, 14)
YESTERDAY = TODAY - datetime.timedelta(days=1)
FIRST_DAY = TODAY - datetime.timedelta(weeks=16)


@pytest.fixture(autouse=True)
def _demo(settings):
    settings.DEBUG = True
    with time_machine.travel(datetime.datetime(2030, 3, 14, 12, 0, tzinfo=datetime.UTC), tick=False):
        yield


@pytest.fixture
def presets():
    presets_load()
    return {campaign.slug: campaign for campaign in Campaign.objects.all()}


def run(*args: str) -> str:
    out = StringIO()
    call_command("generate_demo_history", *args, stdout=out)
    return out.getvalue()


def snapshot() -> set[tuple]:
    return set(DailyStat.objects.values_list("campaign__slug", "topic__slug", "day", "metric", "reason", "count"))


def total(campaign, metric, *, topic=False, **filters) -> int:
    rows = DailyStat.objects.filter(campaign=campaign, metric=metric, topic__isnull=not topic, **filters)
    return rows.aggregate(n=Sum("count"))["n"] or 0


def test_it_fills_sixteen_weeks_up_to_yesterday_for_every_preset_campaign(presets):
    output = run()

    for slug, campaign in presets.items():
        days = set(DailyStat.objects.filter(campaign=campaign, metric="signups").values_list("day", flat=True))
        assert min(days) == FIRST_DAY
        assert max(days) == YESTERDAY
        assert len(days) == 16 * 7, f"{slug} has sign-ups every day"
        assert f"{slug}: generated counts from 22 November 2029 to 13 March 2030 (" in output
    assert not DailyStat.objects.filter(day=TODAY).exists()


def test_it_gives_every_metric_the_dashboard_charts(presets):
    run()

    police = presets["police-recruitment"]
    for metric in ("signups", "confirmations", "expired", "withdrawals", "erasures", "sends", "bounces", "complaints"):
        assert total(police, metric) > 0, metric
    reasons = set(DailyStat.objects.filter(campaign=police, metric="withdrawals").values_list("reason", flat=True))
    assert {"one_click", "unsubscribe_page", "preferences", "complaint", "hard_bounce"} <= reasons
    for reason in reasons:
        erased = total(police, "erasures", reason=reason)
        assert erased == total(police, "withdrawals", reason=reason), "each leaver is erased"
    forces = DailyStat.objects.filter(campaign=police, metric="confirmations", topic__kind="entity")
    assert forces.values("topic").distinct().count() == 43
    assert total(police, "withdrawals", topic=True, reason="preferences") > 0


def test_the_counts_hang_together(presets):
    run()

    for campaign in presets.values():
        by_day = DailyStat.objects.filter(
            campaign=campaign, topic__isnull=True, metric__in=["signups", "confirmations"]
        )
        days: dict[datetime.date, dict[str, int]] = {}
        for day, metric, count in by_day.values_list("day", "metric", "count"):
            days.setdefault(day, {})[metric] = count
        assert all(counts.get("confirmations", 0) <= counts["signups"] for counts in days.values())
        assert total(campaign, "complaints") < total(campaign, "bounces") < total(campaign, "sends")


def test_running_it_again_replaces_the_range_instead_of_adding_to_it(presets):
    run()
    first = snapshot()

    run()

    assert snapshot() == first
    assert DailyStat.objects.count() == len(first)


def test_it_is_deterministic(presets):
    run()
    first = snapshot()
    DailyStat.objects.all().delete()

    run()

    assert snapshot() == first
    DailyStat.objects.all().delete()
    run("--seed", "7")
    assert snapshot() != first


def test_a_day_has_the_same_sign_ups_whichever_day_it_is_generated_on(presets):
    def sign_ups() -> set[tuple]:
        shared = (FIRST_DAY + datetime.timedelta(days=1), YESTERDAY)
        return {
            row for row in snapshot() if row[3] in ("signups", "confirmations") and shared[0] <= row[2] <= shared[1]
        }

    run()
    first = sign_ups()

    with time_machine.travel(datetime.datetime(2030, 3, 15, 12, 0, tzinfo=datetime.UTC), tick=False):
        run()

    assert sign_ups() == first


def test_it_leaves_todays_counts_other_campaigns_and_days_before_the_range_alone(presets):
    police, other = presets["police-recruitment"], CampaignFactory()
    kept = [
        DailyStat.objects.create(campaign=police, day=TODAY, metric="signups", count=3),
        DailyStat.objects.create(campaign=police, day=FIRST_DAY - datetime.timedelta(days=1), metric="sends", count=9),
        DailyStat.objects.create(campaign=other, day=YESTERDAY, metric="signups", count=5),
    ]
    DailyStat.objects.create(campaign=police, day=YESTERDAY, metric="signups", count=1_000_000)

    run()

    assert all(DailyStat.objects.filter(pk=row.pk, count=row.count).exists() for row in kept)
    assert total(police, "signups", day=YESTERDAY) < 1_000_000


def test_it_creates_no_people_consent_records_or_mailings(presets):
    run()

    assert DailyStat.objects.exists()
    for model in (Subscriber, Subscription, ConsentEvent, Mailing, Delivery):
        assert not model.objects.exists(), model.__name__


def test_the_demo_shows_one_complaint_warning(presets):
    run()

    summaries = campaign_summaries(
        campaign_ids=[c.pk for c in presets.values()], figures_for=[c.pk for c in presets.values()]
    )
    high = {s.campaign.slug for s in summaries if s.figures and s.figures.complaints.high}
    assert high == {"civil-service-community"}
    assert all(s.figures and s.figures.signups_this_week > 0 for s in summaries)


def test_it_refuses_when_debug_is_off(settings, presets):
    settings.DEBUG = False

    with pytest.raises(CommandError, match=r"DEBUG is off.*--force"):
        run()

    assert not DailyStat.objects.exists()


def test_it_runs_with_debug_off_when_forced(settings, presets):
    settings.DEBUG = False

    run("--force")

    assert DailyStat.objects.filter(campaign=presets["police-recruitment"]).exists()


def test_it_asks_for_the_presets_first():
    with pytest.raises(CommandError, match="load_presets"):
        run()


def test_it_refuses_a_silly_number_of_weeks(presets):
    with pytest.raises(CommandError, match="--weeks"):
        run("--weeks", "0")
