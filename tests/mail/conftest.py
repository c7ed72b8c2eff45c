"""Fixtures for the sending engine's tests (defined in tests/support/mailing_fixtures.py)."""

from tests.support.mailing_fixtures import audience, campaign, fake_esp, mailing, smtp_sink, topics

__all__ = ["audience", "campaign", "fake_esp", "mailing", "smtp_sink", "topics"]
