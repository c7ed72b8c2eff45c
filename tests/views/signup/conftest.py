"""A campaign with a privacy notice and a form offering two police forces, for the
sign-up's HTTP paths: our page, the embedded form, the confirmation link (views/signup.py)
and the JSON API (views/api.py)."""

import pytest

from tests.support.factories import CampaignFactory, PrivacyNoticeFactory, SignupFormFactory, TopicFactory


@pytest.fixture
def campaign():
    campaign = CampaignFactory(slug="police", redirect_allowlist=["www.police-campaign.example"])
    PrivacyNoticeFactory(campaign=campaign)
    return campaign


@pytest.fixture
def forces(campaign):
    return [
        TopicFactory(campaign=campaign, slug=slug, name=name, kind="entity")
        for slug, name in [("kent-police", "Kent Police"), ("essex-police", "Essex Police")]
    ]


@pytest.fixture
def form(campaign, forces):
    return SignupFormFactory(campaign=campaign, slug="forces", topics=forces)
