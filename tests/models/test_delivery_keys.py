"""A delivery's key is its (mailing, person) pair: the once-per-person guarantee and
the only index a fan-out writes, so every lookup must go through it."""

import pytest
from django.db import IntegrityError, connection, transaction

from subscriptions.models import Delivery, Mailing, Subscriber
from subscriptions.models.mailings import PERSON_BITS, delivery_id
from subscriptions.services import erasure
from subscriptions.services.withdrawal import WithdrawalReason
from tests.support.factories import CampaignFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def mailings(campaign, count):
    return [Mailing.objects.create(campaign=campaign, subject=f"News {i}", body="Hello") for i in range(count)]


def deliver(mailings_, people):
    return {Delivery.objects.create(mailing=m, subscriber=p).pk for m in mailings_ for p in people}


def of_people(campaign, people):
    return Delivery.objects.of_people(campaign_id=campaign.pk, subscriber_ids=[p.pk for p in people])


def test_a_delivery_is_keyed_by_its_mailing_and_person():
    person = SubscriberFactory()
    [mailing] = mailings(person.campaign, 1)
    delivery = Delivery.objects.create(mailing=mailing, subscriber=person)
    assert delivery.pk == delivery_id(mailing.pk, person.pk) == mailing.pk * 2**PERSON_BITS + person.pk
    assert Delivery.objects.get(pk=delivery.pk).subscriber_id == person.pk


def test_a_row_whose_key_is_not_its_pair_is_refused():
    person = SubscriberFactory()
    [mailing] = mailings(person.campaign, 1)
    wrong = Delivery(id=delivery_id(mailing.pk, person.pk) + 1, mailing=mailing, subscriber=person)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.bulk_create([wrong])


def test_a_person_id_too_large_for_the_key_is_refused_rather_than_taking_the_next_mailings_key():
    campaign = CampaignFactory()
    huge = SubscriberFactory(campaign=campaign, id=2**PERSON_BITS)
    [mailing] = mailings(campaign, 1)
    # Its sum is a key of the next mailing's range, the one place it could hide.
    overflowing = Delivery(id=mailing.pk * 2**PERSON_BITS + huge.pk, mailing=mailing, subscriber=huge)
    assert overflowing.pk == delivery_id(mailing.pk + 1, 0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.bulk_create([overflowing])


def test_a_mailings_deliveries_are_one_key_range_that_holds_no_other_mailings():
    campaign = CampaignFactory()
    people = SubscriberFactory.create_batch(3, campaign=campaign)
    before, middle, after = mailings(campaign, 3)
    deliver([before, after], people)
    mine = deliver([middle], people)
    assert set(Delivery.objects.of_mailing(middle.pk).values_list("pk", flat=True)) == mine
    assert set(Delivery.objects.of_mailing(middle.pk).values_list("mailing_id", flat=True)) == {middle.pk}


def test_peoples_deliveries_are_found_in_every_mailing_of_the_campaign_and_no_one_elses():
    campaign, elsewhere = CampaignFactory(), CampaignFactory()
    person, neighbour = SubscriberFactory.create_batch(2, campaign=campaign)
    stranger = SubscriberFactory(campaign=elsewhere)
    ours = mailings(campaign, 3)
    theirs = mailings(elsewhere, 2)
    wanted = deliver(ours, [person])
    deliver(ours, [neighbour])
    deliver(theirs, [stranger])
    assert set(of_people(campaign, [person]).values_list("pk", flat=True)) == wanted
    assert set(of_people(campaign, [person, stranger]).values_list("pk", flat=True)) == wanted
    assert of_people(elsewhere, [person, stranger]).count() == 2
    assert not of_people(campaign, []).exists()  # and does not raise EmptyResultSet


def key_lookups(queryset):
    """The conditions the plan reads the deliveries' key index with; none means it
    never uses the key."""
    # Forbid sequential scans: if the query could not use the key, the plan still
    # scans (at a prohibitive cost) and says so. On a table this small the planner
    # would otherwise scan whatever the query.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        lines = [line.strip(" ->") for line in queryset.explain().splitlines()]
    assert not any(line.startswith("Seq Scan on subscriptions_delivery") for line in lines)
    return [lines[i + 1] for i, line in enumerate(lines) if "subscriptions_delivery_pkey" in line]


def test_finding_a_persons_or_a_mailings_deliveries_looks_up_keys_rather_than_reading_them_all():
    person = SubscriberFactory()
    [mailing] = mailings(person.campaign, 1)
    deliver([mailing], [person])
    # A key index read with no condition would be the whole table in key order. A
    # person's keys are looked up, after one probe of each mailing's range.
    conditions = key_lookups(of_people(person.campaign, [person]))
    assert all(condition.startswith("Index Cond: ") for condition in conditions)
    assert any(condition.startswith("Index Cond: (id = ANY") for condition in conditions)
    [condition] = key_lookups(Delivery.objects.of_mailing(mailing.pk))
    assert condition.startswith("Index Cond: ((id >=")


@pytest.mark.parametrize(
    "erase",
    [
        lambda people: erasure.subscriber_erase(subscriber_id=people[0].pk, reason=WithdrawalReason.ONE_CLICK),
        lambda people: erasure.subscribers_erase(
            candidates=Subscriber.objects.filter(pk=people[0].pk),
            campaign_id=people[0].campaign_id,
            reason=WithdrawalReason.CAMPAIGN_ENDED,
        ),
    ],
    ids=["one person", "in batches"],
)
def test_erasing_someone_deletes_their_deliveries_in_every_mailing_and_no_one_elses(erase):
    campaign = CampaignFactory()
    # Withdrawn, as everyone is whom a withdrawal's erasure reaches.
    people = SubscriberFactory.create_batch(2, campaign=campaign, status=Subscriber.Status.UNSUBSCRIBED)
    sent = mailings(campaign, 3)
    kept = deliver(sent, people[1:])
    deliver(sent, people[:1])
    erase(people)
    assert set(Delivery.objects.values_list("pk", flat=True)) == kept


def test_the_sqlite_demos_lookup_finds_the_same_deliveries(monkeypatch):
    campaign = CampaignFactory()
    person, neighbour = SubscriberFactory.create_batch(2, campaign=campaign)
    sent = mailings(campaign, 2)
    wanted = deliver(sent, [person])
    deliver(sent, [neighbour])
    monkeypatch.setattr(connection, "vendor", "sqlite")  # its branch is portable SQL
    assert set(of_people(campaign, [person]).values_list("pk", flat=True)) == wanted
