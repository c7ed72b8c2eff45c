"""Editing a sign-up form in the admin, as a member who manages the campaign: saving publishes
the next version, and the version earlier people agreed to stays exactly as they saw it."""

import pytest
from django.urls import reverse

from subscriptions import selectors
from subscriptions.models import AuditEvent, ConsentEvent, Permission, SignupForm
from subscriptions.services.privacy import subscriber_export
from tests.support.admin_staff import member, reauthenticated, signed_in
from tests.support.factories import (
    CampaignFactory,
    PrivacyNoticeFactory,
    SignupFormFactory,
    StaffUserFactory,
    TopicFactory,
)
from tests.support.lifecycle import person_with_history
from tests.support.signup import aged_stamp

pytestmark = pytest.mark.django_db

TITLE = "Find out when a police force is recruiting"
OLD_WORDING = "I agree to hear when a police force is recruiting."
NEW_WORDING = "I agree to hear when a police force is recruiting, and about open days."


@pytest.fixture
def v1():
    campaign = CampaignFactory(slug="police")
    PrivacyNoticeFactory(campaign=campaign)
    topic = TopicFactory(campaign=campaign, slug="kent-police", name="Kent Police")
    return SignupFormFactory(campaign=campaign, slug="forces", title=TITLE, consent_wording=OLD_WORDING, topics=[topic])


@pytest.fixture
def manager(client, v1):
    user = member(v1.campaign, Permission.MANAGE)
    signed_in(client, user)
    return user


@pytest.fixture
def earlier(v1):
    """Someone who signed up on version 1."""
    person = person_with_history(
        campaign=v1.campaign, email="earlier@example.com", first_name="Ada", topics=list(v1.topics.all())
    )
    ConsentEvent.objects.filter(subscriber=person).update(form=v1)
    return person


def change_url(form):
    return reverse("admin:subscriptions_signupform_change", args=[form.pk])


def edited(form, **changes):
    data = {
        "campaign": form.campaign_id, "slug": form.slug, "title": form.title, "intro": form.intro,
        "topics": [topic.pk for topic in form.topics.all()], "ask_first_name": "on", "fields": "[]",
        "consent_wording": form.consent_wording,
        # What the page showed before versions were read-only: posting them must change nothing.
        "version": form.version, "is_current": "on",
    }  # fmt: skip
    return {**data, **changes}


def stored(form):
    fresh = SignupForm.objects.get(pk=form.pk)
    return (fresh.version, fresh.title, fresh.consent_wording, sorted(fresh.topics.values_list("pk", flat=True)))


class TestEditing:
    def test_saving_an_edit_publishes_version_two_and_leaves_version_one_as_it_was(self, client, manager, v1):
        before = stored(v1)

        response = client.post(change_url(v1), edited(v1, consent_wording=NEW_WORDING, title="Police alerts"))

        assert response.status_code == 302
        v2 = SignupForm.objects.get(campaign=v1.campaign, is_current=True)
        assert (v2.version, v2.consent_wording, v2.title) == (2, NEW_WORDING, "Police alerts")
        assert stored(v1) == before
        assert not SignupForm.objects.get(pk=v1.pk).is_current
        (event,) = AuditEvent.objects.filter(action="signup_form_published")
        assert (event.actor, event.target_id, event.details["replaced"]) == (manager, v2.pk, v1.pk)

    def test_saving_without_a_change_publishes_nothing(self, client, manager, v1):
        response = client.post(change_url(v1), edited(v1))

        assert response.status_code == 302
        assert list(SignupForm.objects.values_list("pk", "version", "is_current")) == [(v1.pk, 1, True)]

    def test_a_published_version_that_is_no_longer_current_cannot_be_changed(self, client, manager, v1):
        client.post(change_url(v1), edited(v1, consent_wording=NEW_WORDING))
        before = stored(v1)

        response = client.post(change_url(v1), edited(v1, consent_wording="Rewritten evidence"))

        assert response.status_code == 403
        assert stored(v1) == before
        assert SignupForm.objects.count() == 2
        page = client.get(change_url(v1)).content.decode()
        assert OLD_WORDING in page
        assert 'name="_save"' not in page

    @pytest.mark.parametrize("who", ["manager", "operator"])
    def test_no_one_deletes_a_published_version(self, client, v1, who):
        user = member(v1.campaign, Permission.MANAGE) if who == "manager" else StaffUserFactory()
        signed_in(client, user)
        reauthenticated(client, user)

        response = client.post(reverse("admin:subscriptions_signupform_delete", args=[v1.pk]), {"post": "yes"})

        assert response.status_code == 403
        assert SignupForm.objects.filter(pk=v1.pk).exists()

    def test_adding_a_form_publishes_version_one_and_a_taken_address_is_refused(self, client, manager, v1):
        add = reverse("admin:subscriptions_signupform_add")

        created = client.post(add, edited(v1, slug="general", title="General updates"))
        taken = client.post(add, edited(v1, title="A second forces form"))

        assert created.status_code == 302
        general = SignupForm.objects.get(slug="general")
        assert (general.version, general.is_current) == (1, True)
        assert taken.status_code == 200
        assert "already has a form" in taken.content.decode()
        assert SignupForm.objects.filter(slug="forces").count() == 1
        assert AuditEvent.objects.filter(action="signup_form_published").count() == 1


class TestEvidenceAfterAnEdit:
    def test_the_public_page_and_new_sign_ups_use_the_new_version_and_earlier_people_keep_theirs(
        self, client, manager, v1, earlier, django_capture_on_commit_callbacks
    ):
        client.post(change_url(v1), edited(v1, consent_wording=NEW_WORDING))
        v2 = SignupForm.objects.get(campaign=v1.campaign, is_current=True)
        selectors.signup_pages_forget()
        public = reverse("signup", args=["police", "forces"])

        page = client.get(public).content.decode()
        with django_capture_on_commit_callbacks(execute=True):
            client.post(public, {
                "email": "later@example.com", "first_name": "Bo", "topics": ["kent-police"], "consent": "on",
                "stamp": aged_stamp(), "website": "",
            })  # fmt: skip

        assert NEW_WORDING in page
        assert OLD_WORDING not in page
        assert ConsentEvent.objects.get(subscriber__email="later@example.com").form == v2
        assert set(ConsentEvent.objects.filter(subscriber=earlier).values_list("form", flat=True)) == {v1.pk}
        export = subscriber_export(campaign_id=v1.campaign_id, subscriber_id=earlier.pk, actor=manager)
        assert {event["consent_wording"] for event in export["consent_events"]} == {OLD_WORDING}
        assert {event["form"]["version"] for event in export["consent_events"]} == {1}
