"""CSRF under Referrer-Policy: no-referrer, where browsers post forms with Origin: null."""

import pytest
from django.test import Client

from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db

# The lost-link page is a public form that keeps its CSRF token (the sign-up page
# needs none: it takes the same submission cross-site by design).


@pytest.fixture
def campaign():
    return CampaignFactory()


def _url(campaign):
    return f"/c/{campaign.slug}/manage/"


def _post(campaign, **headers):
    client = Client(enforce_csrf_checks=True)
    page = client.get(_url(campaign))
    token = page.context["csrf_token"]
    return client.post(_url(campaign), {"email": "sam@example.com", "csrfmiddlewaretoken": str(token)}, headers=headers)


def test_our_own_page_posting_with_a_null_origin_is_accepted(campaign):
    response = _post(campaign, Origin="null", **{"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()


@pytest.mark.parametrize("fetch_site", [None, "cross-site", "same-site", "none"])
def test_a_null_origin_without_same_origin_fetch_metadata_is_refused(campaign, fetch_site):
    headers = {"Origin": "null"} | ({"Sec-Fetch-Site": fetch_site} if fetch_site else {})
    assert _post(campaign, **headers).status_code == 403


def test_a_foreign_origin_is_refused_whatever_it_claims(campaign):
    response = _post(campaign, Origin="https://evil.example", **{"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 403


def test_a_null_origin_still_needs_the_token(campaign):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        _url(campaign), {"email": "sam@example.com"}, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    )
    assert response.status_code == 403
