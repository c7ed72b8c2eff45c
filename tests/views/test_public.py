"""The public shell: home, a campaign's landing page, health, headers and error pages."""

import re

import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from subscriptions.models import Campaign
from tests.support.factories import CampaignFactory, PrivacyNoticeFactory, SignupFormFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign() -> Campaign:
    return CampaignFactory.create(slug="police", name="Police recruitment", controller_name="Home Office")


def test_home_lists_active_campaigns_and_not_ended_ones(client):
    CampaignFactory(slug="active-one", name="Active campaign")
    CampaignFactory(slug="ended-one", name="Ended campaign", status=Campaign.Status.ENDED)
    content = client.get("/").content.decode()
    assert 'href="/c/active-one/"' in content
    assert "Active campaign" in content
    assert "Ended campaign" not in content


def test_landing_page_links_to_each_current_form(client, campaign):
    SignupFormFactory(campaign=campaign, slug="general", title="General updates", intro="Tips on applying.")
    SignupFormFactory(campaign=campaign, slug="forces", title="Old force title", version=1, is_current=False)
    SignupFormFactory(campaign=campaign, slug="forces", title="Force updates", version=2)
    SignupFormFactory(slug="elsewhere", title="Another campaign's form")
    content = client.get("/c/police/").content.decode()
    assert 'href="/c/police/general/"' in content
    assert "Tips on applying." in content
    assert 'href="/c/police/forces/"' in content
    assert "Force updates" in content
    assert "Old force title" not in content
    assert "Another campaign's form" not in content


def test_landing_page_shows_the_privacy_summary_as_html_and_links_the_full_notice(client, campaign):
    PrivacyNoticeFactory(
        campaign=campaign,
        url="https://example.org/privacy-notice",
        summary="**Who we are**\n\n- your email address\n- the forces you choose",
    )
    content = client.get("/c/police/").content.decode()
    assert "How we use your information" in content
    assert "<strong>Who we are</strong>" in content
    assert "<li>the forces you choose</li>" in content
    link = re.search(r'<a [^>]*href="https://example.org/privacy-notice"[^>]*>([^<]*)</a>', content)
    assert link is not None
    assert "Read the full privacy notice (opens in new tab)" in link.group(1)
    assert 'rel="noopener noreferrer"' in link.group(0)
    assert "Home Office is responsible for your information" in content
    assert "mailto:contact@example.org" in content


def test_landing_page_of_an_ended_campaign_is_not_found(client):
    CampaignFactory(slug="over", status=Campaign.Status.ENDED)
    response = client.get("/c/over/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_the_header_names_the_campaign_in_its_colour_with_readable_text(client):
    CampaignFactory(slug="pale", name="Pale campaign", brand_colour="#ffdd00")
    content = client.get("/c/pale/").content.decode()
    assert 'class="govuk-service-navigation__link">Pale campaign</a>' in content
    assert "--tidings-brand-colour: #ffdd00; --tidings-brand-text-colour: #000000;" in content


def test_a_brand_colour_that_skipped_validation_never_reaches_the_stylesheet(client):
    CampaignFactory(slug="odd", brand_colour="red;}*{")
    content = client.get("/c/odd/").content.decode()
    assert "red;}" not in content
    assert "--tidings-brand-colour: #1d70b8;" in content


def test_pages_without_a_campaign_are_headed_tidings(client):
    content = client.get("/").content.decode()
    assert 'class="govuk-service-navigation__link">Tidings</a>' in content
    assert "--tidings-brand-colour" not in content


def test_public_pages_send_the_security_headers(client, campaign):
    response = client.get("/c/police/")
    policy = response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'nonce="{nonce.group(1)}"' in response.content.decode()
    assert "script-src 'self' 'nonce-" in policy
    # Other sites get no Referer; "no-referrer" would make browsers send `Origin: null`
    # with form POSTs, which Django's CSRF check rejects.
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_every_script_and_style_on_a_page_carries_the_nonce(client, campaign):
    content = client.get("/c/police/").content.decode()
    tags = re.findall(r"<(?:script|style)\b[^>]*>", content)
    assert len(tags) == 3  # the body class, the brand colour and the module that starts GOV.UK Frontend
    assert all("nonce=" in tag for tag in tags)
    assert ' style="' not in content


@pytest.mark.parametrize("path", ["/", "/c/police/", "/c/police/{form}/"])
def test_public_pages_set_no_cookies(client, campaign, path):
    path = path.format(form=SignupFormFactory(campaign=campaign).slug)
    response = client.get(path)
    assert response.status_code == 200
    assert not response.cookies
    assert "Set-Cookie" not in response.headers


# /healthz and /healthz/ready: tests/views/test_health.py


def test_server_error_page_renders_without_a_request_context():
    response = server_error(RequestFactory().get("/"))
    content = response.content.decode()
    assert response.status_code == 500
    assert "Sorry, there is a problem with the service" in content
    assert "govuk-frontend.min.css" in content
    assert "nonce=" not in content


def test_a_form_posted_without_a_csrf_token_gets_the_friendly_page():
    response = Client(enforce_csrf_checks=True).post("/", {})
    assert response.status_code == 403
    assert "Your form could not be sent" in response.content.decode()


def test_the_invalid_link_page_renders_with_or_without_a_campaign(campaign):
    without = render_to_string("subscriptions/link_invalid.html")
    with_campaign = render_to_string("subscriptions/link_invalid.html", {"campaign": campaign})
    assert "This link has not worked" in without
    assert "may already have been used" in without
    assert 'href="/c/police/"' in with_campaign


def test_the_rate_limited_page_asks_people_to_wait():
    content = render_to_string("subscriptions/rate_limited.html")
    assert "Too many requests" in content
    assert "try again" in content
