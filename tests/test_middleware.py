"""CSRF under Referrer-Policy: no-referrer, where browsers post forms with Origin: null."""

import pytest
from django.test import Client

from tests.factories import PrivacyNoticeFactory, SignupFormFactory, TopicFactory
from tests.signup_helpers import aged_stamp

pytestmark = pytest.mark.django_db


@pytest.fixture
def form():
    topic = TopicFactory(slug="general")
    PrivacyNoticeFactory(campaign=topic.campaign)
    return SignupFormFactory(campaign=topic.campaign, slug="general", topics=[topic])


def _post(form, **headers):
    client = Client(enforce_csrf_checks=True)
    url = f"/c/{form.campaign.slug}/general/"
    page = client.get(url)
    token = page.context["csrf_token"]
    data = {"email": "sam@example.com", "consent": "on", "stamp": aged_stamp(), "website": ""}
    return client.post(url, {**data, "csrfmiddlewaretoken": str(token)}, headers=headers)


def test_our_own_page_posting_with_a_null_origin_is_accepted(form):
    response = _post(form, Origin="null", **{"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 302


@pytest.mark.parametrize("fetch_site", [None, "cross-site", "same-site", "none"])
def test_a_null_origin_without_same_origin_fetch_metadata_is_refused(form, fetch_site):
    headers = {"Origin": "null"} | ({"Sec-Fetch-Site": fetch_site} if fetch_site else {})
    assert _post(form, **headers).status_code == 403


def test_a_foreign_origin_is_refused_whatever_it_claims(form):
    response = _post(form, Origin="https://evil.example", **{"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 403


def test_a_null_origin_still_needs_the_token(form):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"/c/{form.campaign.slug}/general/",
        {"email": "sam@example.com", "consent": "on"},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 403
