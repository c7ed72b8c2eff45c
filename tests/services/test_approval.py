"""Two people for big sends: over the campaign's threshold, a member who did not draft
a mailing must approve it before it is sent or scheduled."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from subscriptions.models import AuditEvent, Mailing, Membership, Permission
from subscriptions.services import mailings
from tests.support.mailing_fixtures import BODY

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def drafter():
    return User.objects.create_user("drafter", "drafter@example.org", first_name="Dee", last_name="Raft")


@pytest.fixture
def approver(campaign):
    user = User.objects.create_user("approver", "approver@example.org")
    Membership.objects.create(user=user, campaign=campaign, permissions=[Permission.SEND])
    return user


@pytest.fixture
def draft(campaign, topics, audience, drafter):
    """A newsletter to topics[0], whose audience is five people."""
    return mailings.mailing_create(
        campaign=campaign,
        kind=Mailing.Kind.NEWSLETTER,
        subject="News",
        body=BODY,
        topics=topics[:1],
        created_by=drafter,
    )


def threshold(campaign, value):
    campaign.approval_threshold = value
    campaign.save(update_fields=["approval_threshold"])


def refusal(callable_, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        callable_(**kwargs)
    return " ".join(caught.value.messages)


def test_it_is_off_by_default(campaign, draft, drafter):
    assert campaign.approval_threshold is None
    assert mailings.mailing_send_now(mailing_id=draft.pk, actor=drafter).status == Mailing.Status.SCHEDULED


def test_the_audience_count_follows_the_fan_out_rule(draft):
    assert mailings.mailing_audience_count(mailing=draft) == 5


def test_below_the_threshold_no_approval_is_needed(campaign, draft, drafter):
    threshold(campaign, 5)
    assert mailings.mailing_send_now(mailing_id=draft.pk, actor=drafter).status == Mailing.Status.SCHEDULED


def test_over_the_threshold_sending_and_scheduling_are_refused_until_approved(campaign, draft, drafter):
    threshold(campaign, 4)
    assert "must approve it" in refusal(mailings.mailing_send_now, mailing_id=draft.pk, actor=drafter)
    later = timezone.now() + datetime.timedelta(days=1)
    assert "must approve it" in refusal(mailings.mailing_schedule, mailing_id=draft.pk, send_at=later, actor=drafter)
    draft.refresh_from_db()
    assert draft.status == Mailing.Status.DRAFT


def test_the_creator_cannot_approve_their_own_mailing(campaign, draft, drafter):
    threshold(campaign, 4)
    assert "another member must approve" in refusal(mailings.mailing_approve, mailing_id=draft.pk, actor=drafter)
    draft.refresh_from_db()
    assert draft.approved_at is None


def test_a_second_member_approves_and_then_it_can_be_sent(campaign, draft, drafter, approver):
    threshold(campaign, 4)
    mailings.mailing_approve(mailing_id=draft.pk, actor=approver)
    draft.refresh_from_db()
    assert (draft.approved_by, draft.approved_by_name) == (approver, "approver")
    assert draft.approved_at is not None
    event = AuditEvent.objects.get(action="mailing_approved")
    assert (event.actor_id, event.target_id, event.details["audience"]) == (approver.pk, draft.pk, 5)
    assert mailings.mailing_send_now(mailing_id=draft.pk, actor=drafter).status == Mailing.Status.SCHEDULED


def test_an_approved_mailing_can_be_scheduled(campaign, draft, drafter, approver):
    threshold(campaign, 4)
    mailings.mailing_approve(mailing_id=draft.pk, actor=approver)
    later = timezone.now() + datetime.timedelta(days=1)
    assert mailings.mailing_schedule(mailing_id=draft.pk, send_at=later, actor=drafter).scheduled_at == later


def test_a_member_who_may_not_send_cannot_approve(campaign, draft):
    viewer = User.objects.create_user("viewer", "viewer@example.org")
    Membership.objects.create(user=viewer, campaign=campaign, permissions=[Permission.DASHBOARD, Permission.DRAFT])
    outsider = User.objects.create_user("outsider", "outsider@example.org")
    for who in (viewer, outsider):
        assert "may send" in refusal(mailings.mailing_approve, mailing_id=draft.pk, actor=who)
    draft.refresh_from_db()
    assert draft.approved_at is None


def test_only_a_draft_is_approved(campaign, draft, drafter, approver):
    mailings.mailing_send_now(mailing_id=draft.pk, actor=drafter)
    assert "only a draft" in refusal(mailings.mailing_approve, mailing_id=draft.pk, actor=approver)


def test_nobody_cannot_approve(draft):
    with pytest.raises(ValidationError):
        mailings.mailing_approve(mailing_id=draft.pk, actor=None)


def test_a_change_to_the_draft_clears_the_approval(campaign, draft, drafter, approver):
    threshold(campaign, 4)
    mailings.mailing_approve(mailing_id=draft.pk, actor=approver)
    draft.refresh_from_db()
    draft.body = BODY + "\nOne more thing.\n"
    draft.save()
    assert mailings.mailing_approval_clear(mailing=draft, actor=drafter)
    draft.refresh_from_db()
    assert (draft.approved_by, draft.approved_by_name, draft.approved_at) == (None, "", None)
    assert AuditEvent.objects.filter(action="mailing_approval_cleared", target_id=draft.pk).exists()
    assert "must approve it" in refusal(mailings.mailing_send_now, mailing_id=draft.pk, actor=drafter)


def test_clearing_an_unapproved_draft_does_nothing(draft):
    assert not mailings.mailing_approval_clear(mailing=draft)
    assert not AuditEvent.objects.filter(action="mailing_approval_cleared").exists()


def test_a_member_who_edited_the_draft_cannot_approve_it(campaign, draft, drafter, approver):
    """The two people are the one who shaped what goes and one who did not: rewriting a
    colleague's draft and then approving it yourself is one person."""
    threshold(campaign, 1)
    mailings.mailing_edited(mailing=draft, actor=approver, fields=["body"])
    assert "another member must approve" in refusal(mailings.mailing_approve, mailing_id=draft.pk, actor=approver)
    draft.refresh_from_db()
    assert draft.approved_at is None
    assert AuditEvent.objects.filter(action="mailing_edited", actor_id=approver.pk).count() == 1
