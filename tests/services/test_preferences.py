import re
from unittest import mock

import pytest
from django.core import mail

from subscriptions import abuse
from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, DailyStat, Delivery, Mailing, Subscriber, Subscription, Suppression
from subscriptions.services import data_export, preferences
from subscriptions.services.preferences import EmailChangeOutcome
from subscriptions.tokens import ConfirmPurpose, read_confirm_token
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory, TopicFactory
from tests.support.nothing_left import assert_nothing_left
from tests.support.signup import last_mail_to

pytestmark = pytest.mark.django_db

EMAIL = "zephyrine.quill@example.com"
NAME = "Zephyrine"
CHANGE_LINK = re.compile(r"https?://[^\s\"'<>]+/email-change/([^/\s\"'<>]+)/")


@pytest.fixture
def campaign():
    return CampaignFactory(
        extra_fields=[
            {"name": "region", "label": "Region", "type": "text", "required": False},
            {"name": "employer", "label": "Employer", "type": "text", "required": False},
        ]
    )


@pytest.fixture
def general(campaign):
    return TopicFactory(campaign=campaign, name="General updates", position=0)


@pytest.fixture
def kent(campaign):
    return TopicFactory(campaign=campaign, name="Kent Police", kind="entity", position=1)


@pytest.fixture
def essex(campaign):
    return TopicFactory(campaign=campaign, name="Essex Police", kind="entity", position=2)


@pytest.fixture
def person(campaign, general, kent):
    subscriber = SubscriberFactory(campaign=campaign, email=EMAIL, first_name=NAME, attributes={"region": "South"})
    SubscriptionFactory(subscriber=subscriber, topic=general)
    SubscriptionFactory(subscriber=subscriber, topic=kent)
    return subscriber


def _update(person, topics, first_name=NAME, attributes=None):
    return preferences.preferences_update(
        subscriber_id=person.pk,
        topic_ids=[topic.pk for topic in topics],
        first_name=first_name,
        attributes={"region": "South"} if attributes is None else attributes,
    )


def _open_topics(person):
    return set(Subscription.objects.filter(subscriber=person, ended_at__isnull=True).values_list("topic_id", flat=True))


class TestPreferencesUpdate:
    def test_it_ends_some_topics_only_and_records_a_changed_event(self, person, general, kent):
        change = _update(person, [general])
        assert (change.started, change.ended, change.withdrawn) == ([], [kent.pk], False)
        assert _open_topics(person) == {general.pk}
        ended = Subscription.objects.get(subscriber=person, topic=kent)
        assert ended.ended_at is not None
        assert ended.ended_reason == "preferences"
        event = ConsentEvent.objects.get(subscriber=person, kind="changed")
        assert (event.source, event.topic_ids) == ("preferences", [general.pk])
        assert event.details == {"started": [], "ended": [kent.pk], "corrected": []}
        person.refresh_from_db()
        assert person.status == "active"

    def test_general_and_entity_topics_can_be_chosen_together(self, person, general, kent, essex):
        change = _update(person, [general, kent, essex])
        assert change.started == [essex.pk]
        assert _open_topics(person) == {general.pk, kent.pk, essex.pk}
        assert Subscription.objects.get(subscriber=person, topic=essex).source == "preferences"
        assert DailyStat.objects.get(topic=essex, metric="confirmations").count == 1

    def test_a_topic_dropped_and_chosen_again_is_a_new_row(self, person, general, kent):
        _update(person, [general])
        _update(person, [general, kent])
        rows = Subscription.objects.filter(subscriber=person, topic=kent).order_by("pk")
        assert [row.ended_at is None for row in rows] == [False, True]

    def test_it_corrects_details_and_names_them_without_their_values(self, person, general, kent):
        change = _update(person, [general, kent], first_name="Zeph", attributes={"region": "North"})
        assert change.details == ["first_name", "region"]
        person.refresh_from_db()
        assert (person.first_name, person.attributes) == ("Zeph", {"region": "North"})
        event = ConsentEvent.objects.get(subscriber=person, kind="changed")
        assert "Zeph" not in str(event.details)
        assert "North" not in str(event.details)

    def test_a_cleared_detail_is_removed_and_an_undeclared_one_is_never_stored(self, person, general, kent):
        _update(person, [general, kent], attributes={"region": "", "shoe_size": "9"})
        person.refresh_from_db()
        assert person.attributes == {}

    def test_sending_what_is_already_held_writes_nothing(self, person, general, kent):
        change = _update(person, [general, kent])
        assert not change.changed
        assert not ConsentEvent.objects.filter(kind="changed").exists()

    def test_a_subscription_to_an_archived_topic_is_left_alone(self, person, campaign, general, kent):
        old = TopicFactory(campaign=campaign, archived=True)
        SubscriptionFactory(subscriber=person, topic=old)
        _update(person, [general, kent, old])
        _update(person, [general])
        assert _open_topics(person) == {general.pk, old.pk}

    def test_topics_of_another_campaign_are_ignored(self, person, general, kent):
        foreign = TopicFactory()
        change = _update(person, [general, kent, foreign])
        assert not change.changed
        assert foreign.pk not in _open_topics(person)

    def test_it_changes_nothing_for_someone_no_longer_active(self, person, general):
        Subscriber.objects.filter(pk=person.pk).update(status="unsubscribed")
        assert _update(person, [general], first_name="Other") is None
        person.refresh_from_db()
        assert person.first_name == NAME

    def test_ending_every_topic_withdraws_and_leaves_nothing(self, person, run):
        change = run(_update, person=person, topics=[])
        assert change.withdrawn
        assert not Subscriber.objects.filter(pk=person.pk).exists()
        assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "withdrawn"
        assert DailyStat.objects.get(metric="withdrawals", topic=None).reason == "preferences"
        assert_nothing_left(EMAIL, NAME)


class TestEmailChange:
    NEW = "zq.new@example.net"

    def _confirm_claim(self):
        token = CHANGE_LINK.search(last_mail_to(self.NEW).body).group(1)
        return read_confirm_token(purpose=ConfirmPurpose.EMAIL_CHANGE, token=token)

    def test_a_request_mails_only_the_new_address_and_changes_nothing(self, person, run, mailoutbox):
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        assert [message.to for message in mailoutbox] == [[self.NEW]]
        person.refresh_from_db()
        assert person.email == EMAIL
        event = ConsentEvent.objects.get(subscriber=person, kind="changed")
        assert event.details["new_email"] == self.NEW

    def test_confirming_switches_the_address_rotates_links_and_tells_the_old_one(self, person, run, mailoutbox):
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        claim = self._confirm_claim()
        outcome = run(preferences.email_change_confirm, subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert outcome == EmailChangeOutcome.CHANGED
        old_key = person.link_key
        person.refresh_from_db()
        assert (person.email, person.email_hmac) == (self.NEW, email_hmac(self.NEW))
        assert person.link_key != old_key
        notice = last_mail_to(EMAIL)
        assert "different address" in notice.subject
        assert self.NEW not in notice.body, "the old inbox is not told where the mail goes now"
        assert_nothing_left(EMAIL)

    def test_a_link_confirms_once(self, person, run):
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        claim = self._confirm_claim()
        run(preferences.email_change_confirm, subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        again = run(preferences.email_change_confirm, subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert again == EmailChangeOutcome.ALREADY
        assert len([m for m in mail.outbox if m.to == [EMAIL]]) == 1

    def test_an_address_held_by_another_subscriber_is_not_taken(self, person, campaign, run):
        SubscriberFactory(campaign=campaign, email=self.NEW)
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        claim = self._confirm_claim()
        outcome = run(preferences.email_change_confirm, subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert outcome == EmailChangeOutcome.TAKEN
        person.refresh_from_db()
        assert person.email == EMAIL

    def test_an_unconfirmed_sign_up_for_the_new_address_gives_way(self, person, campaign, run):
        pending = SubscriberFactory(campaign=campaign, email=self.NEW, status="pending")
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        claim = self._confirm_claim()
        outcome = run(preferences.email_change_confirm, subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert outcome == EmailChangeOutcome.CHANGED
        assert not Subscriber.objects.filter(pk=pending.pk).exists()

    def test_confirming_from_the_new_inbox_lifts_its_suppression(self, person, campaign, run):
        Suppression.objects.create(campaign=campaign, email_hmac=email_hmac(self.NEW), reason="withdrawn")
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        claim = self._confirm_claim()
        run(preferences.email_change_confirm, subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert not Suppression.objects.exists()

    def test_the_form_cannot_be_used_to_mail_a_stranger_repeatedly(self, person, run, mailoutbox):
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        with pytest.raises(abuse.RateLimited):
            run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        assert len(mailoutbox) == 1
        assert ConsentEvent.objects.filter(kind="changed").count() == 1

    def test_a_newer_request_forgets_the_older_address_and_voids_its_link(self, person, run):
        run(preferences.email_change_request, subscriber_id=person.pk, new_email="typo@example.nte")
        token = CHANGE_LINK.search(last_mail_to("typo@example.nte").body).group(1)
        first = read_confirm_token(purpose=ConfirmPurpose.EMAIL_CHANGE, token=token)
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=self.NEW)
        assert_nothing_left("typo@example.nte")
        outcome = run(preferences.email_change_confirm, subscriber_id=first.subscriber_id, event_id=first.event_id)
        assert outcome == EmailChangeOutcome.GONE
        claim = self._confirm_claim()
        outcome = run(preferences.email_change_confirm, subscriber_id=claim.subscriber_id, event_id=claim.event_id)
        assert outcome == EmailChangeOutcome.CHANGED

    def test_asking_for_the_current_address_does_nothing(self, person, run, mailoutbox):
        run(preferences.email_change_request, subscriber_id=person.pk, new_email=EMAIL.upper())
        assert mailoutbox == []


class TestManageLinkRequest:
    def test_a_subscribed_address_gets_its_link(self, person, campaign, run):
        run(preferences.manage_link_request, campaign=campaign, email="Zephyrine.Quill@EXAMPLE.com")
        assert f"/manage/{person.pk}." in last_mail_to(EMAIL).body

    def test_an_unknown_address_gets_nothing_and_the_caller_cannot_tell(self, campaign, run, mailoutbox):
        assert run(preferences.manage_link_request, campaign=campaign, email="nobody@example.com") is None
        assert mailoutbox == []

    def test_the_limits_count_known_and_unknown_addresses_alike(self, person, campaign, run, mailoutbox):
        for address in (EMAIL, "nobody@example.com"):
            run(preferences.manage_link_request, campaign=campaign, email=address, client_ip="192.0.2.1")
            with pytest.raises(abuse.RateLimited):
                run(preferences.manage_link_request, campaign=campaign, email=address, client_ip="192.0.2.1")
        assert len(mailoutbox) == 1

    def test_known_and_unknown_addresses_queue_the_same_task_without_the_address(self, person, campaign, run):
        with mock.patch("subscriptions.tasks.send_manage_link.apply_async") as apply_async:
            run(preferences.manage_link_request, campaign=campaign, email=EMAIL)
            run(preferences.manage_link_request, campaign=campaign, email="nobody@example.com")
        (known,), (unknown,) = (call.args for call in apply_async.call_args_list)
        assert known == (campaign.pk, email_hmac(EMAIL))
        assert unknown == (campaign.pk, email_hmac("nobody@example.com"))

    def test_an_unsubscribed_address_gets_nothing(self, person, campaign, run, mailoutbox):
        Subscriber.objects.filter(pk=person.pk).update(status="unsubscribed")
        run(preferences.manage_link_request, campaign=campaign, email=EMAIL)
        assert mailoutbox == []


class TestDataExport:
    def test_it_holds_the_whole_history_and_no_one_else(self, person, campaign, general, kent):
        other = SubscriberFactory(campaign=campaign, email="someone.else@example.com", first_name="Bartholomew")
        SubscriptionFactory(subscriber=other, topic=general)
        _update(person, [general])
        mailing = Mailing.objects.create(campaign=campaign, subject="Kent is recruiting", body="Hi")
        Delivery.objects.create(mailing=mailing, subscriber=person, status="sent")
        Delivery.objects.create(mailing=mailing, subscriber=other, status="sent")

        export = data_export.subscriber_data_export(subscriber_id=person.pk)

        assert export["subscriber"]["email"] == EMAIL
        assert export["subscriber"]["attributes"] == {"region": "South"}
        assert sorted((s["topic"], s["ended_at"] is None) for s in export["subscriptions"]) == [
            ("General updates", True),
            ("Kent Police", False),
        ]
        assert [e["kind"] for e in export["consent_events"]] == ["changed"]
        [delivery] = export["deliveries"]
        assert (delivery["mailing_subject"], delivery["status"]) == ("Kent is recruiting", "sent")
        flat = str(export)
        for absent in ("someone.else", "Bartholomew", person.link_key, person.email_hmac):
            assert absent not in flat

    def test_there_is_nothing_to_export_for_someone_erased(self):
        assert data_export.subscriber_data_export(subscriber_id=987654) is None


def test_a_deletion_request_erases_everything_but_the_suppression(person, run):
    assert run(preferences.data_erasure_request, subscriber_id=person.pk)
    assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "erased"
    assert_nothing_left(EMAIL, NAME)
