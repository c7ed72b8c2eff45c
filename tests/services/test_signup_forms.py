"""Publishing sign-up forms: an edit is a new version, and a published version is never changed,
so every consent event keeps pointing at the words its person saw."""

import pytest
from django.core.exceptions import ValidationError

from subscriptions import selectors
from subscriptions.models import AuditEvent, ConsentEvent, SignupForm
from subscriptions.services import data_export
from subscriptions.services.signup.request import signup_request
from subscriptions.services.signup_forms import signup_form_publish
from tests.support.factories import CampaignFactory, SignupFormFactory, StaffUserFactory, TopicFactory
from tests.support.lifecycle import person_with_history

pytestmark = pytest.mark.django_db

OLD_WORDING = "I agree to hear when a police force is recruiting."
NEW_WORDING = "I agree to hear when a police force is recruiting, and about open days."


@pytest.fixture
def staff():
    return StaffUserFactory()


@pytest.fixture
def v1():
    campaign = CampaignFactory(extra_fields=[{"name": "postcode", "label": "Postcode", "type": "text"}])
    topic = TopicFactory(campaign=campaign, name="Kent Police")
    return SignupFormFactory(
        campaign=campaign, slug="forces", title="Find out when a police force is recruiting",
        consent_wording=OLD_WORDING, topics=[topic],
    )  # fmt: skip


def publish(form, actor, replacing=None, **changes):
    content = {
        "title": form.title, "intro": form.intro, "ask_first_name": form.ask_first_name,
        "first_name_required": form.first_name_required, "fields": form.fields,
        "consent_wording": form.consent_wording, "topics": list(form.topics.all()),
    }  # fmt: skip
    return signup_form_publish(
        campaign=form.campaign, slug=form.slug, actor=actor, replacing=replacing or form, **{**content, **changes}
    )


def as_stored(form):
    fresh = SignupForm.objects.get(pk=form.pk)
    return {
        "title": fresh.title, "intro": fresh.intro, "consent_wording": fresh.consent_wording, "fields": fresh.fields,
        "version": fresh.version, "topics": sorted(fresh.topics.values_list("pk", flat=True)),
    }  # fmt: skip


class TestPublishing:
    def test_an_edit_publishes_the_next_version_and_leaves_the_old_one_as_it_was(self, v1, staff):
        before = as_stored(v1)

        v2 = publish(v1, staff, consent_wording=NEW_WORDING, title="Police recruitment alerts")

        assert (v2.version, v2.is_current, v2.consent_wording, v2.title) == (
            2, True, NEW_WORDING, "Police recruitment alerts"
        )  # fmt: skip
        assert list(v2.topics.all()) == list(v1.topics.all())
        assert as_stored(v1) == before
        assert not SignupForm.objects.get(pk=v1.pk).is_current
        assert selectors.signup_form_get(campaign_slug=v1.campaign.slug, form_slug="forces") == v2

    def test_it_is_audited_without_the_wording(self, v1, staff):
        v2 = publish(v1, staff, consent_wording=NEW_WORDING)

        event = AuditEvent.objects.get()
        assert (event.action, event.actor, event.campaign_id, event.target_type, event.target_id) == (
            "signup_form_published", staff, v1.campaign_id, "signup_form", v2.pk
        )  # fmt: skip
        assert event.details == {"slug": "forces", "version": 2, "replaced": v1.pk}

    @pytest.mark.parametrize(
        "change",
        [{"intro": "New intro"}, {"fields": ["postcode"]}, {"ask_first_name": False}, {"first_name_required": True},
         {"topics": []}],
    )  # fmt: skip
    def test_any_change_of_what_people_see_is_a_new_version(self, v1, staff, change):
        v2 = publish(v1, staff, **change)

        assert v2.version == 2
        assert SignupForm.objects.filter(campaign=v1.campaign, is_current=True).get() == v2

    def test_saving_it_unchanged_publishes_nothing(self, v1, staff):
        assert publish(v1, staff) == v1
        assert SignupForm.objects.count() == 1
        assert AuditEvent.objects.count() == 0

    def test_a_new_form_starts_at_version_one(self, v1, staff):
        created = signup_form_publish(
            campaign=v1.campaign, slug="general", title="General updates", consent_wording=OLD_WORDING,
            topics=list(v1.topics.all()), actor=staff,
        )  # fmt: skip

        assert (created.version, created.is_current) == (1, True)
        assert SignupForm.objects.get(pk=v1.pk).is_current

    def test_a_taken_address_is_not_a_new_form(self, v1, staff):
        with pytest.raises(ValidationError, match="already has a form"):
            signup_form_publish(
                campaign=v1.campaign, slug="forces", title="Other", consent_wording=NEW_WORDING, topics=[], actor=staff
            )
        assert SignupForm.objects.count() == 1

    def test_an_old_version_cannot_be_edited(self, v1, staff):
        publish(v1, staff, consent_wording=NEW_WORDING)

        with pytest.raises(ValidationError, match="newer version"):
            publish(v1, staff, title="Edited from a stale page")
        assert SignupForm.objects.count() == 2

    def test_a_topic_of_another_campaign_is_refused(self, v1, staff):
        with pytest.raises(ValidationError, match="topics of this campaign"):
            publish(v1, staff, topics=[TopicFactory()])
        assert SignupForm.objects.count() == 1

    def test_a_field_the_campaign_does_not_collect_is_refused(self, v1, staff):
        with pytest.raises(ValidationError, match="does not collect"):
            publish(v1, staff, fields=["date_of_birth"])
        assert SignupForm.objects.count() == 1


class TestEvidence:
    def test_earlier_people_keep_the_old_wording_and_later_sign_ups_get_the_new(
        self, v1, staff, django_capture_on_commit_callbacks
    ):
        earlier = person_with_history(
            campaign=v1.campaign, email="earlier@example.com", first_name="Ada", topics=list(v1.topics.all())
        )
        ConsentEvent.objects.filter(subscriber=earlier).update(form=v1)
        v2 = publish(v1, staff, consent_wording=NEW_WORDING)

        current = selectors.signup_form_get(campaign_slug=v1.campaign.slug, form_slug="forces")
        with django_capture_on_commit_callbacks(execute=True):
            signup_request(
                form=current, email="later@example.com", first_name="Bo", topics=list(current.topics.all()),
                attributes={}, source=ConsentEvent.Source.PAGE,
            )  # fmt: skip

        later = ConsentEvent.objects.get(subscriber__email="later@example.com")
        assert later.form == v2
        exported = data_export.subscriber_data_export(subscriber_id=earlier.pk) or {}
        wordings = {event["consent_wording"] for event in exported["consent_events"]}
        assert wordings == {OLD_WORDING}
        assert {event["form"]["version"] for event in exported["consent_events"]} == {1}
