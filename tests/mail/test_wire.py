"""What goes on the wire for one fixed mailing to two people, exactly: over SMTP the
envelope and the DATA bytes as written (dot-stuffed), and through anymail's real
backends the request each ESP's API receives. Compared with wire.json, in order.

Only randomness is pinned: the MIME boundary and Message-ID tag (secrets.token_hex),
the Date header, and the ids anymail makes up for SendGrid. To record an intended
change to what is sent: TIDINGS_WIRE_RECORD=1, then review the diff of wire.json.
"""

import email.utils
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from subscriptions.models import Campaign, Mailing, Subscriber, Subscription, Topic
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.run import mailing_send_batches
from tests.support import smtp_sink as sink_module
from tests.support.fake_esp import FakeEsp
from tests.support.fake_mailgun import mailgun_server
from tests.support.fake_mailjet import mailjet_server
from tests.support.fake_sendgrid import sendgrid_server
from tests.support.fake_sparkpost import sparkpost_server
from tests.support.local_http import JsonRequest, QuietHandler, ScriptedService, served
from tests.support.mailing_fixtures import quick_sending, sending_through
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.django_db

GOLDEN = Path(__file__).with_name("wire.json")
RECORD = os.environ.get("TIDINGS_WIRE_RECORD") == "1"
DATE = "Thu, 01 Jan 2026 00:00:00 GMT"
# Ids far above any a sequence hands out in a test run, so the delivery ids (and with
# them the delivery references and link tokens) are the same in every run.
CAMPAIGN, MAILING, FIRST_PERSON = 917_001, 917_001, 917_001
BODY = (
    'Hi {{ first_name|default:"there" }}!\n\n.starts with a dot\n\n'
    "See [the jobs](https://example.org/jobs?a=1&b=2) {now}, 100%.\n\n{{ first_name }} & co\n"
)
PEOPLE = [
    ("zoe@example.com", "Zoë <b>&</b> %recipient.tidings_manage_url% {{x}}"),
    ("kim@bücher.example", ""),
]


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setattr(secrets, "token_hex", lambda nbytes=32: "5e" * nbytes)
    monkeypatch.setattr(email.utils, "formatdate", lambda *args, **kwargs: DATE)


@pytest.fixture
def fixed_mailing() -> Mailing:
    campaign = Campaign.objects.create(
        pk=CAMPAIGN,
        slug="wire",
        name="Kent {Police} 100%",
        controller_name="Kent Police",
        contact_email="contact@police.example.org",
        sender_name="Polîce recruitment",
        sender_email="jobs@police.example.org",
        inbound_unsubscribe=True,
        inbound_address="leave@police.example.org",
    )
    topic = Topic.objects.create(campaign=campaign, slug="jobs", name="Jobs & {careers}", kind=Topic.Kind.ENTITY)
    for offset, (address, first_name) in enumerate(PEOPLE):
        person = Subscriber.objects.create(
            pk=FIRST_PERSON + offset,
            campaign=campaign,
            email=address,
            first_name=first_name,
            status=Subscriber.Status.ACTIVE,
            link_key=f"wire{offset}" * 4,
        )
        Subscription.objects.create(subscriber=person, topic=topic, source=Subscription.Source.PAGE)
    mailing = Mailing.objects.create(
        pk=MAILING, campaign=campaign, subject="Ça recrute: Kent {now}", body=BODY, status=Mailing.Status.SENDING
    )
    mailing.topics.set([topic])
    Mailing.objects.filter(pk=mailing.pk).update(recipients_count=mailing_fan_out(mailing=mailing))
    return mailing


def compare(name: str, captured: Any, *, ordered: bool = True) -> None:
    """`captured` against the recorded `name`, as values and, where the order is ours
    rather than anymail's (which builds some from sets), in order: JSON key order too."""
    captured = json.loads(json.dumps(captured))  # as the file holds it: lists, not tuples
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if RECORD:
        golden[name] = captured
        GOLDEN.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    assert captured == golden[name]
    if ordered:
        assert json.dumps(captured) == json.dumps(golden[name])


def send(mailing: Mailing) -> None:
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 2}


def _raw_data(self) -> bytes:
    """The DATA as it came over the socket: dot-stuffing kept."""
    lines = []
    while (line := self.rfile.readline()) not in (b".\r\n", b""):
        lines.append(line)
    return b"".join(lines)


def test_smtp(fixed_mailing, settings, monkeypatch):
    monkeypatch.setattr(sink_module._Handler, "_read_data", _raw_data)
    with SmtpSink() as sink:
        options = {"host": "127.0.0.1", "port": sink.port, "use_tls": False, "timeout": 5}
        quick_sending(settings, {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options})
        send(fixed_mailing)
        received = list(sink.state.received)
    captured = [
        {"sender": item.sender, "recipients": item.recipients, "data": item.data.decode("ascii")} for item in received
    ]
    compare("smtp", captured)


def test_one_call_per_person_through_a_django_backend(fixed_mailing, settings):
    quick_sending(settings, {"BACKEND": "tests.support.fake_esp.FakeEspBackend"})
    FakeEsp.reset()
    try:
        send(fixed_mailing)
        captured = [{**asdict(sent), "esp_message_id": ""} for sent in FakeEsp.sent]
    finally:
        FakeEsp.reset()
    compare("fake_esp", captured)


def _json_calls(received: list[JsonRequest]) -> list[dict[str, Any]]:
    return [{"path": request.path, "body": request.body} for request in received]


def test_mailgun(fixed_mailing, settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "key-test", "api_url": f"http://127.0.0.1:{port}/v3"}

    with sending_through(settings, mailgun_server(), "anymail.backends.mailgun.EmailBackend", options) as fake:
        send(fixed_mailing)
    # anymail writes Mailgun's merge headers and recipient-variables from sets: their order varies by run.
    posts = [
        {"path": post.path, "fields": dict(sorted(post.fields.items())), "recipient-variables": post.variables}
        for post in fake.received
    ]
    for post in posts:
        del post["fields"]["recipient-variables"]
    compare("mailgun", posts, ordered=False)


def test_sendgrid(fixed_mailing, settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "SG.test", "api_url": f"http://127.0.0.1:{port}/v3/"}

    with sending_through(settings, sendgrid_server(), "anymail.backends.sendgrid.EmailBackend", options) as fake:
        send(fixed_mailing)
    for call in fake.received:
        for personalization in call.body["personalizations"]:
            personalization["custom_args"]["anymail_id"] = "made up by anymail"
    compare("sendgrid", _json_calls(fake.received))


def test_sparkpost(fixed_mailing, settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "sp-test", "api_url": f"http://127.0.0.1:{port}/api/v1/"}

    with sending_through(settings, sparkpost_server(), "anymail.backends.sparkpost.EmailBackend", options) as fake:
        send(fixed_mailing)
    compare("sparkpost", _json_calls(fake.received), ordered=False)  # anymail orders merge headers by a set


def test_mailjet(fixed_mailing, settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "mj-key", "secret_key": "mj-secret", "api_url": f"http://127.0.0.1:{port}/v3.1/"}

    with sending_through(settings, mailjet_server(), "anymail.backends.mailjet.EmailBackend", options) as fake:
        send(fixed_mailing)
    compare("mailjet", _json_calls(fake.received))


def _postmark_handler(fake: ScriptedService[JsonRequest, None]) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self):
            request = JsonRequest(path=self.path, body=self.read_json())
            fake.next_answer(request)
            answer = {"To": request.body["To"], "MessageID": f"pm-{len(fake.received)}", "ErrorCode": 0}
            self.send_json(200, {**answer, "SubmittedAt": "2026-01-01T00:00:00Z", "Message": "OK"})

    return Handler


@contextmanager
def postmark_server() -> Iterator[ScriptedService[JsonRequest, None]]:
    fake: ScriptedService[JsonRequest, None] = ScriptedService(default=lambda: None)
    with served(fake, _postmark_handler(fake)) as served_fake:
        yield served_fake


def test_postmark(fixed_mailing, settings):
    def options(port: int) -> dict[str, str]:
        return {"server_token": "pm-test", "api_url": f"http://127.0.0.1:{port}/"}

    with sending_through(settings, postmark_server(), "anymail.backends.postmark.EmailBackend", options) as fake:
        send(fixed_mailing)
    compare("postmark", _json_calls(fake.received))
