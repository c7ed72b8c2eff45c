"""Staff data requests: each one is scoped to a campaign, audited without personal data, and a
refused request changes nothing."""

import pytest
from django.core.exceptions import ValidationError

from subscriptions import selectors
from subscriptions.addresses import email_hmac
from subscriptions.models import AuditEvent, ConsentEvent, Mailing, PrivacyNotice, Subscriber
from subscriptions.services import privacy
from subscriptions.services.privacy import Action, ErasureOutcome
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.tokens import LinkPurpose, TokenInvalid, make_link_token, subscriber_for_link_token
from tests.support.factories import CampaignFactory, PrivacyNoticeFactory, StaffUserFactory, TopicFactory
from tests.support.lifecycle import held_intact, person_with_history
from tests.support.nothing_left import assert_nothing_left

pytestmark = pytest.mark.django_db

EMAIL, NAME = "marguerite.oyelaran@example.com", "Marguerite"


@pytest.fixture
def staff():
    return StaffUserFactory()


@pytest.fixture
def campaign():
    return CampaignFactory(extra_fields=[{"name": "region", "label": "Region", "type": "text"}])


@pytest.fixture
def topic(campaign):
    return TopicFactory(campaign=campaign)


@pytest.fixture
def person(campaign, topic):
    return person_with_history(campaign=campaign, email=EMAIL, first_name=NAME, topics=[topic])


def audit_trail() -> list[tuple[str, int | None]]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", "target_id"))


def unchanged(person) -> bool:
    fresh = Subscriber.objects.get(pk=person.pk)
    fields = ("email", "first_name", "restricted", "legal_hold", "status", "erasure_due_at")
    return all(getattr(fresh, f) == getattr(person, f) for f in fields)


class TestFind:
    def test_it_finds_a_person_by_their_exact_address_in_one_campaign(self, campaign, person, staff):
        found = privacy.subscriber_find(
            campaign_id=campaign.pk, email="  Marguerite.Oyelaran@EXAMPLE.com ", actor=staff
        )

        assert found == person
        event = AuditEvent.objects.get()
        assert (event.action, event.actor, event.target_id, event.details) == (
            Action.SEARCHED, staff, person.pk, {"found": True},
        )  # fmt: skip

    def test_it_never_matches_part_of_an_address(self, campaign, person, staff):
        with pytest.raises(ValidationError, match="full email address"):
            privacy.subscriber_find(campaign_id=campaign.pk, email="marguerite", actor=staff)
        assert (
            privacy.subscriber_find(campaign_id=campaign.pk, email="guerite.oyelaran@example.com", actor=staff) is None
        )

    def test_it_does_not_find_the_same_address_in_another_campaign(self, person, staff):
        assert privacy.subscriber_find(campaign_id=CampaignFactory().pk, email=EMAIL, actor=staff) is None
        assert AuditEvent.objects.get().details == {"found": False}

    def test_it_needs_a_real_campaign(self, staff):
        with pytest.raises(ValidationError, match="Choose a campaign"):
            privacy.subscriber_find(campaign_id=999_999, email=EMAIL, actor=staff)


class TestExport:
    def test_it_exports_everything_held_about_the_person_and_audits_it(self, campaign, person, staff):
        data = privacy.subscriber_export(campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff)

        assert data["subscriber"]["email"] == EMAIL
        assert [event["kind"] for event in data["consent_events"]] == ["requested", "confirmed"]
        assert len(data["subscriptions"]) == 1
        assert audit_trail() == [(Action.EXPORTED, person.pk)]

    def test_it_refuses_to_export_a_person_of_another_campaign(self, person, staff):
        with pytest.raises(ValidationError, match="another campaign"):
            privacy.subscriber_export(campaign_id=CampaignFactory().pk, subscriber_id=person.pk, actor=staff)
        assert audit_trail() == []

    def test_it_refuses_an_unknown_id(self, campaign, staff):
        with pytest.raises(ValidationError, match="no subscriber 424242"):
            privacy.subscriber_export(campaign_id=campaign.pk, subscriber_id=424242, actor=staff)
        assert audit_trail() == []


class TestRectify:
    def test_it_corrects_details_and_records_which_fields_changed(self, campaign, person, staff):
        changed = privacy.subscriber_rectify(
            campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff, email="m.oyelaran@example.com",
            first_name="Maggie", attributes={"region": "North"},
        )  # fmt: skip

        assert changed == ["email", "first_name", "attributes"]
        person.refresh_from_db()
        assert (person.email, person.first_name, person.attributes) == (
            "m.oyelaran@example.com", "Maggie", {"region": "North"},
        )  # fmt: skip
        assert person.email_hmac == email_hmac("m.oyelaran@example.com")
        event = ConsentEvent.objects.get(subscriber=person, kind=ConsentEvent.Kind.CHANGED)
        assert (event.source, event.details) == ("admin", {"rectified": changed})
        assert AuditEvent.objects.get().details == {"fields": changed}

    def test_a_new_address_revokes_every_link_sent_to_the_old_one(self, campaign, person, staff):
        old_links = {purpose: make_link_token(purpose=purpose, subscriber=person) for purpose in LinkPurpose}

        privacy.subscriber_rectify(
            campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff, email="m.oyelaran@example.com"
        )

        for purpose, token in old_links.items():
            with pytest.raises(TokenInvalid):
                subscriber_for_link_token(purpose=purpose, token=token)
        fresh = Subscriber.objects.get(pk=person.pk)
        new_link = make_link_token(purpose=LinkPurpose.MANAGE, subscriber=fresh)
        assert subscriber_for_link_token(purpose=LinkPurpose.MANAGE, token=new_link) == fresh

    def test_correcting_only_the_name_keeps_the_links_working(self, campaign, person, staff):
        link = make_link_token(purpose=LinkPurpose.MANAGE, subscriber=person)

        privacy.subscriber_rectify(campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff, first_name="Maggie")

        assert subscriber_for_link_token(purpose=LinkPurpose.MANAGE, token=link).pk == person.pk

    def test_it_writes_nothing_when_nothing_differs(self, campaign, person, staff):
        assert (
            privacy.subscriber_rectify(campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff, first_name=NAME)
            == []
        )
        assert audit_trail() == []

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"email": "taken@example.com"}, "Another subscriber"),
            ({"email": "not-an-address"}, "valid email"),
            ({"attributes": {"salary": "1"}}, "does not collect salary"),
        ],
    )
    def test_it_refuses_bad_corrections_and_changes_nothing(self, campaign, person, staff, fields, message):
        person_with_history(campaign=campaign, email="taken@example.com", first_name="T", topics=[])

        with pytest.raises(ValidationError, match=message):
            privacy.subscriber_rectify(
                campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff, first_name="Changed", **fields
            )

        assert unchanged(person)
        assert audit_trail() == []


class TestRestriction:
    def test_a_restricted_person_is_kept_but_left_out_of_every_audience(self, campaign, topic, person, staff):
        privacy.subscriber_restrict(campaign_id=campaign.pk, subscriber_id=person.pk, restricted=True, actor=staff)

        mailing = Mailing.objects.create(campaign=campaign, kind=Mailing.Kind.SERVICE_NOTICE, subject="S", body="B")
        assert mailing_fan_out(mailing=mailing) == 0
        assert not selectors.audience(campaign=campaign).exists()
        assert not selectors.audience(campaign=campaign, topic_ids=[topic.pk]).exists()
        assert held_intact(person)
        assert audit_trail() == [(Action.RESTRICTED, person.pk)]

    def test_lifting_the_restriction_puts_them_back(self, campaign, topic, person, staff):
        privacy.subscriber_restrict(campaign_id=campaign.pk, subscriber_id=person.pk, restricted=True, actor=staff)
        privacy.subscriber_restrict(campaign_id=campaign.pk, subscriber_id=person.pk, restricted=False, actor=staff)

        assert list(selectors.audience(campaign=campaign, topic_ids=[topic.pk])) == [person]
        assert [action for action, _ in audit_trail()] == [Action.RESTRICTED, Action.UNRESTRICTED]

    def test_restricting_twice_is_refused(self, campaign, person, staff):
        privacy.subscriber_restrict(campaign_id=campaign.pk, subscriber_id=person.pk, restricted=True, actor=staff)

        with pytest.raises(ValidationError, match="already restricted"):
            privacy.subscriber_restrict(campaign_id=campaign.pk, subscriber_id=person.pk, restricted=True, actor=staff)
        assert len(audit_trail()) == 1


class TestLegalHoldAndErasure:
    def test_staff_erasure_leaves_nothing_and_the_audit_holds_no_personal_data(self, campaign, person, staff):
        assert privacy.subscriber_erase_for_staff(campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff) == (
            ErasureOutcome.ERASED
        )

        assert_nothing_left(EMAIL, NAME)
        assert audit_trail() == [(Action.ERASED, person.pk)]

    def test_erasing_an_unknown_id_is_refused(self, campaign, person, staff):
        with pytest.raises(ValidationError, match="no subscriber 31337"):
            privacy.subscriber_erase_for_staff(campaign_id=campaign.pk, subscriber_id=31337, actor=staff)
        assert audit_trail() == []
        assert held_intact(person)

    def test_a_person_on_hold_is_kept_whole_until_the_hold_lifts_then_erased(self, campaign, person, staff):
        privacy.legal_hold_place(campaign_id=campaign.pk, subscriber_id=person.pk, reason="Claim 2026/118", actor=staff)

        outcome = privacy.subscriber_erase_for_staff(campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff)

        assert outcome == ErasureOutcome.HELD
        assert held_intact(person)
        person.refresh_from_db()
        assert (person.status, person.legal_hold_set_by, person.legal_hold_reason) == (
            Subscriber.Status.UNSUBSCRIBED, staff, "Claim 2026/118",
        )  # fmt: skip
        assert person.erasure_due_at is not None

        assert privacy.legal_hold_lift(campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff) == (
            ErasureOutcome.ERASED
        )
        assert_nothing_left(EMAIL, NAME, "Claim 2026/118")
        assert [action for action, _ in audit_trail()] == [
            Action.HOLD_PLACED, Action.ERASURE_HELD, Action.HOLD_LIFTED, Action.ERASED,
        ]  # fmt: skip

    def test_lifting_a_hold_with_no_erasure_due_keeps_the_person(self, campaign, person, staff):
        privacy.legal_hold_place(campaign_id=campaign.pk, subscriber_id=person.pk, reason="Audit", actor=staff)

        assert privacy.legal_hold_lift(campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff) is None

        person.refresh_from_db()
        assert (person.legal_hold, person.legal_hold_reason, person.legal_hold_set_by) == (False, "", None)
        assert held_intact(person)

    def test_lifting_a_hold_that_is_not_there_is_refused(self, campaign, person, staff):
        with pytest.raises(ValidationError, match="not on legal hold"):
            privacy.legal_hold_lift(campaign_id=campaign.pk, subscriber_id=person.pk, actor=staff)
        assert unchanged(person)
        assert audit_trail() == []

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_a_hold_needs_a_reason(self, campaign, person, staff, reason):
        with pytest.raises(ValidationError, match="reason"):
            privacy.legal_hold_place(campaign_id=campaign.pk, subscriber_id=person.pk, reason=reason, actor=staff)
        assert unchanged(person)

    def test_a_hold_cannot_be_placed_twice(self, campaign, person, staff):
        privacy.legal_hold_place(campaign_id=campaign.pk, subscriber_id=person.pk, reason="A", actor=staff)

        with pytest.raises(ValidationError, match="already on legal hold"):
            privacy.legal_hold_place(campaign_id=campaign.pk, subscriber_id=person.pk, reason="B", actor=staff)
        person.refresh_from_db()
        assert person.legal_hold_reason == "A"

    def test_nothing_is_done_to_a_person_of_another_campaign(self, person, staff):
        other = CampaignFactory().pk
        for act in (
            lambda: privacy.subscriber_erase_for_staff(campaign_id=other, subscriber_id=person.pk, actor=staff),
            lambda: privacy.legal_hold_place(campaign_id=other, subscriber_id=person.pk, reason="X", actor=staff),
            lambda: privacy.subscriber_restrict(
                campaign_id=other, subscriber_id=person.pk, restricted=True, actor=staff
            ),
        ):
            with pytest.raises(ValidationError, match="another campaign"):
                act()
        assert unchanged(person)
        assert audit_trail() == []


class TestPrivacyNotices:
    def test_a_new_version_leaves_consent_evidence_pointing_at_what_people_saw(self, campaign, topic, staff):
        first = PrivacyNoticeFactory(campaign=campaign, version=1)
        person = person_with_history(campaign=campaign, email=EMAIL, first_name=NAME, topics=[topic], notice=first)

        second = privacy.privacy_notice_publish(
            campaign=campaign, url="https://example.org/privacy/v2", summary="We now keep less.",
            retention_summary="Until you leave.", actor=staff,
        )  # fmt: skip

        assert second.version == 2
        assert set(ConsentEvent.objects.filter(subscriber=person).values_list("privacy_notice", flat=True)) == {
            first.pk
        }
        assert selectors.privacy_notice_current(campaign=campaign) == second
        assert not Mailing.objects.exists()
        assert audit_trail() == [(Action.NOTICE_PUBLISHED, second.pk)]

    def test_publishing_can_tell_every_active_subscriber(self, campaign, topic, person, staff):
        person_with_history(
            campaign=campaign, email="left@example.com", first_name="L", topics=[topic],
            status=Subscriber.Status.UNSUBSCRIBED,
        )  # fmt: skip

        notice = privacy.privacy_notice_publish(
            campaign=campaign, url="https://example.org/privacy/v2", summary="We now keep less.",
            retention_summary="Until you leave.", actor=staff, notify_subscribers=True,
        )  # fmt: skip

        mailing = Mailing.objects.get()
        assert (mailing.kind, mailing.status) == (Mailing.Kind.SERVICE_NOTICE, Mailing.Status.SCHEDULED)
        assert notice.url in mailing.body
        assert mailing_fan_out(mailing=mailing) == 1
        assert PrivacyNotice.objects.get() == notice
