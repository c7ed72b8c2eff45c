import pytest

from tests.support.factories import SignupFormFactory, TopicFactory


@pytest.fixture
def signup_form(db):
    """A form offering two topics (test_drain.py and test_stream.py use a one-topic form of their own)."""
    general = TopicFactory(slug="general", name="General updates")
    force = TopicFactory(campaign=general.campaign, slug="kent-police", name="Kent Police", kind="entity")
    return SignupFormFactory(campaign=general.campaign, topics=[general, force])


@pytest.fixture
def drains_asked(monkeypatch):
    """Sign-ups append to the stream but the drain they ask for is only counted, so a
    test can look at the stream before it is recorded."""
    asked: list[None] = []
    monkeypatch.setattr("subscriptions.tasks.drain_signups.apply_async", lambda *args, **kwargs: asked.append(None))
    return asked
