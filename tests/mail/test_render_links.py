"""Links and images in a mailing are the same for everyone: no personal field leaves in a URL."""

import pytest
from django.test import override_settings

from subscriptions.mail.render import Personal, mailing_compile
from subscriptions.models import Campaign, LinkClickCount, Mailing
from subscriptions.services import mailings
from subscriptions.services.webhooks import link_click_count
from tests.support.factories import CampaignFactory, TopicFactory

pytestmark = pytest.mark.django_db

NAME_IN_LINK = "Welcome! [Say hello](https://partner.example/welcome?who={{ first_name }})\n"
NAME_IN_HTML_LINK = '<a href="https://partner.example/welcome?who={{first_name}}">Say hello</a>\n'
NAME_IN_IMAGE = "![](https://pixel.example/p.gif?n={{ first_name }})\n"
NAME_IN_HTML_IMAGE = '<img src="https://pixel.example/p.gif?n={{ first_name|default:"x" }}" alt="">\n'
ALICE = Personal(first_name="Alice", unsubscribe_url="https://t.example/u/x/", manage_url="https://t.example/m/x/")


def problems(body: str, tracking: str = Campaign.TrackingMode.AGGREGATE) -> list[str]:
    campaign = CampaignFactory.create(tracking_mode=tracking)
    mailing = Mailing(campaign=campaign, kind=Mailing.Kind.NEWSLETTER, subject="News", body=body)
    return mailings.mailing_problems(mailing=mailing, topics=[TopicFactory.create(campaign=campaign)])


class TestPersonalFieldsInLinks:
    @pytest.mark.parametrize("body", [NAME_IN_LINK, NAME_IN_HTML_LINK])
    @pytest.mark.parametrize("tracking", list(Campaign.TrackingMode))
    def test_a_link_carrying_a_personal_field_is_refused_naming_the_link(self, body, tracking):
        found = problems(body, tracking)

        assert len(found) == 1, found
        assert "https://partner.example/welcome?who={{" in found[0]
        assert "personal" in found[0]

    def test_personal_fields_in_the_text_around_links_are_fine(self):
        assert problems('Hello {{ first_name|default:"there" }}, [read on](https://example.org/news).\n') == []

    def test_a_mailing_that_carries_one_anyway_sends_the_link_without_the_name(self):
        # A mailing validated before links were checked may still be scheduled.
        mailing = Mailing(campaign=CampaignFactory(), subject="News", body=NAME_IN_LINK + NAME_IN_HTML_LINK)

        compiled = mailing_compile(mailing=mailing, topics=[])

        for rendered in (compiled.render_html(ALICE), compiled.render_text(ALICE)):
            assert "Alice" not in rendered
            assert "https://partner.example/welcome?who=" in rendered

    def test_click_counts_hold_the_link_as_written_never_a_persons_copy(self):
        mailing = Mailing.objects.create(campaign=CampaignFactory(), subject="News", body=NAME_IN_LINK)
        sent = mailing_compile(mailing=mailing, topics=[]).render_html(ALICE)
        clicked = sent.split('href="')[1].split('"')[0]

        link_click_count(mailing_id=mailing.pk, url=clicked)

        assert list(LinkClickCount.objects.values_list("url", flat=True)) == ["https://partner.example/welcome?who="]


class TestPersonalFieldsInImages:
    @pytest.mark.parametrize("body", [NAME_IN_IMAGE, NAME_IN_HTML_IMAGE])
    @pytest.mark.parametrize("tracking", [Campaign.TrackingMode.OFF, Campaign.TrackingMode.AGGREGATE])
    def test_an_image_carrying_a_personal_field_is_refused_unless_tracking_is_individual(self, body, tracking):
        found = problems(body, tracking)

        assert len(found) == 1, found
        assert "https://pixel.example/p.gif?n={{" in found[0]
        assert "image" in found[0]

    @pytest.mark.parametrize("body", [NAME_IN_IMAGE, NAME_IN_HTML_IMAGE])
    def test_individual_tracking_may_personalise_images(self, body):
        assert problems(body, Campaign.TrackingMode.INDIVIDUAL) == []

    @override_settings(TRACKING_ENABLED=False)
    def test_with_tracking_switched_off_for_the_installation_even_individual_may_not(self):
        assert len(problems(NAME_IN_IMAGE, Campaign.TrackingMode.INDIVIDUAL)) == 1

    def test_images_the_same_for_everyone_are_fine(self):
        assert problems("![Logo](https://example.org/logo.png)\n", Campaign.TrackingMode.OFF) == []

    def test_a_mailing_that_carries_one_anyway_loads_no_image_with_the_name(self):
        campaign = CampaignFactory(tracking_mode=Campaign.TrackingMode.OFF)
        mailing = Mailing(campaign=campaign, subject="News", body=NAME_IN_IMAGE + NAME_IN_HTML_IMAGE)

        assert "Alice" not in mailing_compile(mailing=mailing, topics=[]).render_html(ALICE)
