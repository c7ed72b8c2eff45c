"""The sign-up page's per-process copy: reused while its rows are unchanged, never after."""

import pytest
from django.db import connection
from django.http import Http404

from subscriptions import selectors
from subscriptions.models import Campaign, SignupForm, Topic
from tests.support.factories import CampaignFactory, PrivacyNoticeFactory, SignupFormFactory, TopicFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def form():
    campaign = CampaignFactory(slug="police")
    PrivacyNoticeFactory(campaign=campaign, version=1)
    topics = [TopicFactory(campaign=campaign, slug=slug, position=n) for n, slug in enumerate(["kent", "essex"])]
    return SignupFormFactory(campaign=campaign, slug="forces", topics=topics)


def _page():
    return selectors.signup_page_get(campaign_slug="police", form_slug="forces")


def test_it_reads_the_form_its_offered_topics_and_the_current_notice(form):
    Topic.objects.filter(slug="essex").update(archived=True)
    page = _page()
    assert page.form == form
    assert [topic.slug for topic in page.topics] == ["kent"]
    assert page.privacy_notice == form.campaign.privacy_notices.get()


def test_an_unchanged_page_is_reused_in_one_query(form, django_assert_num_queries):
    first = _page()
    with django_assert_num_queries(1):
        assert _page() is first


def test_a_page_checked_within_the_reuse_window_is_reused_without_a_query(form, django_assert_num_queries):
    first = _page()
    Campaign.objects.filter(pk=form.campaign_id).update(status=Campaign.Status.ENDED)
    with django_assert_num_queries(0):
        assert selectors.signup_page_get(campaign_slug="police", form_slug="forces", reuse_within=60) is first


def test_reusing_a_page_does_not_extend_its_window(form, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(selectors, "monotonic", lambda: clock[0])
    _page()  # checked at 1000.0
    Campaign.objects.filter(pk=form.campaign_id).update(status=Campaign.Status.ENDED)
    clock[0] = 1000.6
    assert selectors.signup_page_get(
        campaign_slug="police", form_slug="forces", reuse_within=1.0
    ).form.campaign.is_active
    clock[0] = 1001.2  # 0.6 s after the reuse, 1.2 s after the check
    page = selectors.signup_page_get(campaign_slug="police", form_slug="forces", reuse_within=1.0)
    assert not page.form.campaign.is_active


def test_a_page_checked_longer_ago_than_the_reuse_window_is_checked_again(form):
    _page()
    Campaign.objects.filter(pk=form.campaign_id).update(status=Campaign.Status.ENDED)
    page = selectors.signup_page_get(campaign_slug="police", form_slug="forces", reuse_within=0.0)
    assert not page.form.campaign.is_active


def test_a_campaign_ended_by_an_update_is_seen_by_the_next_request(form):
    assert _page().form.campaign.is_active
    Campaign.objects.filter(pk=form.campaign_id).update(status=Campaign.Status.ENDED)
    assert not _page().form.campaign.is_active


def test_a_row_changed_twice_in_one_transaction_is_seen_each_time(form):
    # Rows written by one transaction share an xmin; the new row version's ctid differs.
    Campaign.objects.filter(pk=form.campaign_id).update(name="First")
    assert _page().form.campaign.name == "First"
    Campaign.objects.filter(pk=form.campaign_id).update(name="Second")
    assert _page().form.campaign.name == "Second"


def test_a_form_edited_into_a_new_version_is_seen_by_the_next_request(form):
    assert _page().form.version == 1
    SignupForm.objects.filter(pk=form.pk).update(is_current=False)
    SignupFormFactory(campaign=form.campaign, slug="forces", version=2, consent_wording="New wording.")
    page = _page()
    assert (page.form.version, page.form.consent_wording) == (2, "New wording.")


def test_topics_renamed_archived_or_removed_are_seen_by_the_next_request(form):
    assert len(_page().topics) == 2
    Topic.objects.filter(slug="kent").update(name="Kent Constabulary")
    assert _page().topics[0].name == "Kent Constabulary"
    Topic.objects.filter(slug="kent").update(archived=True)
    assert [topic.slug for topic in _page().topics] == ["essex"]
    form.topics.clear()
    assert _page().topics == []


def test_a_new_privacy_notice_is_seen_by_the_next_request(form):
    assert _page().privacy_notice.version == 1
    PrivacyNoticeFactory(campaign=form.campaign, version=2)
    assert _page().privacy_notice.version == 2


def test_a_form_no_longer_current_is_not_found(form):
    _page()
    SignupForm.objects.filter(pk=form.pk).update(is_current=False)
    with pytest.raises(Http404):
        _page()


def test_a_raw_sql_change_is_seen_too(form):
    _page()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE subscriptions_campaign SET status = 'ended' WHERE id = %s", [form.campaign_id])
    assert not _page().form.campaign.is_active
