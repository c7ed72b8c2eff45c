"""signup_request: what a request is refused for, and how it hands over to the intake."""

import pytest

from subscriptions import abuse
from subscriptions.models import ConsentEvent, Subscriber
from subscriptions.services.signup import drain
from subscriptions.services.signup.request import CampaignClosed
from tests.services.signup.intake import accept, sign_up
from tests.support.factories import SignupFormFactory, TopicFactory


@pytest.fixture
def general_form(db):
    general = TopicFactory(slug="general", name="General updates")
    return SignupFormFactory(campaign=general.campaign, topics=[general])


@pytest.mark.django_db
class TestRequest:
    def test_it_refuses_an_ended_campaign_and_writes_nothing(self, signup_form):
        signup_form.campaign.status = "ended"
        signup_form.campaign.save()
        with pytest.raises(CampaignClosed):
            sign_up(signup_form)
        assert not Subscriber.objects.exists()

    def test_a_second_request_within_the_window_sends_nothing_and_changes_nothing(
        self, signup_form, django_capture_on_commit_callbacks, mailoutbox
    ):
        with django_capture_on_commit_callbacks(execute=True):
            sign_up(signup_form)
        with pytest.raises(abuse.RateLimited):
            sign_up(signup_form, first_name="Changed")
        assert len(mailoutbox) == 1
        assert ConsentEvent.objects.count() == 1
        assert Subscriber.objects.get().first_name == "Sam"


def test_only_a_sign_up_that_finds_no_drain_on_its_way_asks_for_one(general_form, drains_asked):
    for number in range(3):
        accept(general_form, email=f"person{number}@example.com")
    assert len(drains_asked) == 1

    drain.signups_drain()  # empties the stream, so the flag goes with it
    accept(general_form, email="later@example.com")

    assert len(drains_asked) == 2
    assert Subscriber.objects.count() == 3


def test_without_redis_a_sign_up_is_recorded_in_its_request(general_form, settings, drains_asked):
    settings.REDIS_URL = ""  # the SQLite demo

    accept(general_form)

    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert drains_asked == []
