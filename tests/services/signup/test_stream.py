"""The intake stream: one script admits and appends, or refuses and appends nothing;
entries are sealed, and still read after a key rotation."""

import pytest

from subscriptions import abuse
from subscriptions.services.signup import stream
from tests.services.signup.intake import accept
from tests.support.factories import SignupFormFactory, TopicFactory
from tests.support.nothing_left import traces_of


@pytest.fixture
def signup_form(db):
    general = TopicFactory(slug="general", name="General updates")
    return SignupFormFactory(campaign=general.campaign, topics=[general])


def test_a_refused_request_appends_nothing(signup_form, drains_asked):
    accept(signup_form)
    with pytest.raises(abuse.RateLimited):
        accept(signup_form)  # one confirmation email per address per window

    assert stream.backlog() == 1
    assert len(drains_asked) == 1


def test_redis_never_holds_the_address_or_name_in_clear(signup_form, drains_asked, redis_client):
    accept(signup_form, email="river.bank@example.com", first_name="Riverbank", client_ip=None)

    [(_, fields)] = redis_client.xrange(stream.STREAM)
    raw = b"".join(fields.values())
    assert b"river.bank" not in raw.lower()
    assert b"riverbank" not in raw.lower()
    assert traces_of("river.bank@example.com", "Riverbank") == [], "sealed in the stream, nowhere else"


def test_an_entry_sealed_before_a_key_rotation_is_still_read(settings):
    settings.SECRET_KEY = "the-old-secret-key-" + "x" * 40
    sealed = stream.seal('{"any": "payload"}')
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-new-secret-key-" + "y" * 40, [settings.SECRET_KEY]

    assert stream.unseal(sealed) == '{"any": "payload"}'
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(ValueError, match="not a sealed intake entry"):
        stream.unseal(sealed)
