"""The "keep me subscribed" link: GET shows a button, POST answers, a wrong link changes nothing."""

import datetime
import re

import pytest
from django.core import mail
from django.urls import reverse

from subscriptions.models import ConsentEvent, Subscriber
from subscriptions.services import reconfirmation
from subscriptions.tokens import LinkPurpose, make_link_token
from tests.support.factories import CampaignFactory, TopicFactory
from tests.support.lifecycle import person_with_history

pytestmark = pytest.mark.django_db

CONFIRMED = datetime.datetime(2025, 1, 10, 9, 0, tzinfo=datetime.UTC)
ASKED = CONFIRMED + datetime.timedelta(days=400)


@pytest.fixture
def campaign():
    return CampaignFactory(slug="newsletter", reconfirm_after_days=365)


def asked_person(campaign, email: str, time_machine) -> Subscriber:
    person = person_with_history(
        campaign=campaign, email=email, first_name="Ines", topics=[TopicFactory.create(campaign=campaign)],
        confirmed_at=CONFIRMED,
    )  # fmt: skip
    time_machine.move_to(ASKED, tick=False)
    reconfirmation.reconfirmation_send(subscriber_id=person.pk, reminder=False)
    person.refresh_from_db()
    return person


@pytest.fixture
def person(campaign, time_machine):
    return asked_person(campaign, "ines.moreau@example.com", time_machine)


def reconfirm_path(subscriber, purpose=LinkPurpose.RECONFIRM) -> str:
    return reverse("reconfirm", args=[make_link_token(purpose=purpose, subscriber=subscriber)])


def answers(subscriber) -> int:
    return ConsentEvent.objects.filter(subscriber_id=subscriber.pk, kind=ConsentEvent.Kind.RECONFIRMED).count()


def test_the_link_in_the_email_leads_to_a_button_that_keeps_the_person(client, person):
    (message,) = mail.outbox
    path = re.search(r"https://tidings\.test(/reconfirm/[^/\s]+/)", message.body).group(1)

    page = client.get(path)
    assert page.status_code == 200
    assert "Keep me subscribed" in page.content.decode()
    assert answers(person) == 0  # mail scanners follow links: a GET changes nothing

    done = client.post(path)
    assert done.status_code == 200
    assert "You are still subscribed" in done.content.decode()
    assert answers(person) == 1
    person.refresh_from_db()
    assert person.reconfirm_requested_at is None


def test_a_second_post_records_nothing_more(client, person):
    client.post(reconfirm_path(person))
    again = client.post(reconfirm_path(person))

    assert again.status_code == 200
    assert answers(person) == 1


def test_a_token_naming_another_person_is_refused_and_changes_nothing(client, campaign, person, time_machine):
    other = asked_person(campaign, "someone.else@example.com", time_machine)
    mine = make_link_token(purpose=LinkPurpose.RECONFIRM, subscriber=person)
    forged = f"{other.pk}.{mine.partition('.')[2]}"

    response = client.post(reverse("reconfirm", args=[forged]))

    assert response.status_code == 404
    assert "This link has not worked" in response.content.decode()
    assert answers(person) == answers(other) == 0
    other.refresh_from_db()
    assert other.reconfirm_requested_at == ASKED


def test_an_unsubscribe_token_does_not_reconfirm(client, person):
    response = client.post(reconfirm_path(person, purpose=LinkPurpose.UNSUBSCRIBE))

    assert response.status_code == 404
    assert answers(person) == 0


def test_someone_who_has_left_is_told_so_and_offered_to_sign_up_again(client, person):
    Subscriber.objects.filter(pk=person.pk).update(status=Subscriber.Status.UNSUBSCRIBED)

    response = client.post(reconfirm_path(person))

    assert response.status_code == 410
    assert "You are no longer subscribed" in response.content.decode()
    assert reverse("campaign-landing", args=["newsletter"]) in response.content.decode()
    assert answers(person) == 0


def test_the_link_of_an_erased_person_is_simply_not_working(client, person):
    path = reconfirm_path(person)
    Subscriber.objects.filter(pk=person.pk).delete()

    assert client.get(path).status_code == 404
