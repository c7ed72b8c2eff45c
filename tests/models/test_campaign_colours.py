"""Campaign.brand_text_colour: header text stays readable on any brand colour."""

import itertools

import pytest

from subscriptions.models import Campaign
from subscriptions.models.campaigns import relative_luminance


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize(
    ("brand_colour", "text_colour"),
    [("#1d70b8", "#ffffff"), ("#0b0c0c", "#ffffff"), ("#ffdd00", "#000000"), ("#ffffff", "#000000")],
)
def test_it_picks_white_on_dark_and_black_on_light(brand_colour, text_colour):
    assert Campaign(brand_colour=brand_colour).brand_text_colour == text_colour


def test_the_text_meets_wcag_aa_on_every_brand_colour():
    steps = range(0, 256, 15)
    for red, green, blue in itertools.product(steps, steps, steps):
        brand_colour = f"#{red:02x}{green:02x}{blue:02x}"
        text_colour = Campaign(brand_colour=brand_colour).brand_text_colour
        assert contrast(brand_colour, text_colour) >= 4.5, brand_colour


def test_an_invalid_brand_colour_falls_back_to_the_default():
    campaign = Campaign(brand_colour="red;}*{")
    assert campaign.brand_colour_css == "#1d70b8"
    assert campaign.brand_text_colour == "#ffffff"
