"""Migration 0008 gives deliveries already in the table their (mailing, person) key."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("subscriptions", "0007_consent_event_time_of_request")]
AFTER = [("subscriptions", "0008_delivery_keyed_by_mailing_and_person")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_deliveries_take_their_pair_as_their_key():
    old = migrate(BEFORE)
    try:
        campaign = old.get_model("subscriptions", "Campaign").objects.create(
            slug="migrated", name="Migrated", controller_name="Controller", sender_name="Sender",
            sender_email="news@example.org",
        )  # fmt: skip
        people = [
            old.get_model("subscriptions", "Subscriber").objects.create(
                campaign=campaign, email=f"p{i}@example.org", status="active"
            )
            for i in range(2)
        ]
        Mailing = old.get_model("subscriptions", "Mailing")
        mailings = [Mailing.objects.create(campaign=campaign, subject=f"M{i}", body="Hi") for i in range(2)]
        OldDelivery = old.get_model("subscriptions", "Delivery")
        for mailing in mailings:
            for person in people:
                OldDelivery.objects.create(mailing=mailing, subscriber=person, status="sent")
        pairs = set(OldDelivery.objects.values_list("mailing_id", "subscriber_id"))

        new = migrate(AFTER)

        rows = set(new.get_model("subscriptions", "Delivery").objects.values_list("pk", "mailing_id", "subscriber_id"))
        assert {(mailing, person) for _, mailing, person in rows} == pairs
        assert all(pk == (mailing << 40) | person for pk, mailing, person in rows)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # as every other test expects
