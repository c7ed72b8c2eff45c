"""Fixtures for the sending engine's tests: an audience, a mailing, a fake ESP, an SMTP sink."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from django.utils import timezone

from subscriptions.mail.letter import Letter
from subscriptions.mail.render import mailing_compile
from subscriptions.mail.transports.base import Transport
from subscriptions.mail.transports.choose import transport_for
from subscriptions.models import Delivery, Mailing, Subscriber, Subscription, Topic
from subscriptions.services.sending.fan_out import mailing_fan_out
from tests.support.factories import CampaignFactory, SubscriberFactory, TopicFactory
from tests.support.fake_esp import FakeEsp
from tests.support.local_http import ScriptedService
from tests.support.smtp_sink import SmtpSink

BODY = 'Hello {{ first_name|default:"there" }},\n\nThe **Kent** force is [recruiting now](https://example.org/jobs).\n'


def subscribe(subscriber: Subscriber, *topics: Topic, ended: bool = False) -> None:
    for topic in topics:
        Subscription.objects.create(
            subscriber=subscriber,
            topic=topic,
            source=Subscription.Source.PAGE,
            ended_at=timezone.now() if ended else None,
        )


def make_mailing(
    campaign, topics, *, kind=Mailing.Kind.NEWSLETTER, status=Mailing.Status.SENDING, body=BODY
) -> Mailing:
    mailing = Mailing.objects.create(
        campaign=campaign, kind=kind, subject="Kent is recruiting", body=body, status=status
    )
    mailing.topics.set(topics)
    return mailing


@pytest.fixture
def campaign():
    return CampaignFactory(sender_email="alerts@police.example.org")


@pytest.fixture
def topics(campaign):
    return [TopicFactory(campaign=campaign, kind=Topic.Kind.ENTITY) for _ in range(3)]


@pytest.fixture
def audience(campaign, topics):
    """Five people subscribed to the first topic, two of them to the second as well."""
    people = [SubscriberFactory(campaign=campaign, first_name=f"Person {i}") for i in range(5)]
    for person in people:
        subscribe(person, topics[0])
    subscribe(people[0], topics[1])
    subscribe(people[1], topics[1])
    return people


@pytest.fixture
def mailing(campaign, topics, audience):
    """A mailing to topics[0], fanned out to the audience, not yet started."""
    mailing = make_mailing(campaign, topics[:1])
    Mailing.objects.filter(pk=mailing.pk).update(recipients_count=mailing_fan_out(mailing=mailing))
    return mailing


def mailing_transport(mailing: Mailing) -> Transport:
    """The transport the default mailer gives this mailing."""
    letter = Letter(compiled=mailing_compile(mailing=mailing), campaign=mailing.campaign)
    return transport_for(alias="default", letter=letter)


def delivery_statuses(mailing: Mailing) -> dict[str, str]:
    return dict(Delivery.objects.filter(mailing=mailing).values_list("subscriber__email", "status"))


@contextmanager
def sending_through[F: ScriptedService[Any, Any]](
    settings, server: AbstractContextManager[F], backend: str, options: Callable[[int], dict[str, str]]
) -> Iterator[F]:
    """Send through anymail's `backend` pointed at a fake ESP `server` (options for its port)."""
    with server as fake:
        quick_sending(settings, {"BACKEND": backend, "OPTIONS": options(fake.port)})
        yield fake


def quick_sending(settings, mailer: dict) -> None:
    """Send through `mailer` with no throttling and short retry waits."""
    settings.MAILERS = {"default": mailer}
    settings.SEND_RETRY_BACKOFF_SECONDS = 0.01
    settings.SEND_RATE_PER_SECOND = 1000
    settings.SEND_RATE_BURST = 1000


@pytest.fixture
def fake_esp(settings):
    quick_sending(settings, {"BACKEND": "tests.support.fake_esp.FakeEspBackend"})
    FakeEsp.reset()
    yield FakeEsp
    FakeEsp.reset()


@pytest.fixture
def smtp_sink(settings):
    with SmtpSink() as sink:
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": sink.port, "use_tls": False, "timeout": 5},
            }
        }
        settings.SEND_RATE_PER_SECOND = 1000
        settings.SEND_RATE_BURST = 1000
        yield sink
