"""Mailgun's send API on a local port, so anymail's real Mailgun backend can be driven over HTTP.

Each POST is recorded as Mailgun would receive it (form fields, repeated for lists)
and answered from a queue of scripted answers, then "queued". `Received.messages()`
does what Mailgun does with a batch: one message per "to" address, with every
`%recipient.KEY%` replaced, in one pass, by that address's recipient-variables.
"""

import json
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.support.local_http import QuietHandler, ScriptedService, served

_MERGE_FIELD = re.compile(r"%recipient\.([^%]+)%")


@dataclass
class Answer:
    status: int = 200
    retry_after: str | None = None
    reset: bool = False  # read the whole request, then drop the connection without answering
    refuse: str | None = None  # answer 400 when this address is among the recipients
    garbled: bool = False  # take the message (200) but answer with a body anymail cannot read


@dataclass
class Received:
    path: str
    fields: dict[str, list[str]]

    @property
    def to(self) -> list[str]:
        return self.fields["to"]

    @property
    def variables(self) -> dict[str, dict[str, str]]:
        return json.loads(self.fields["recipient-variables"][0])

    def messages(self) -> dict[str, dict[str, str]]:
        """What each recipient gets: every field with their merge values substituted."""
        out = {}
        for address in self.to:
            values = self.variables[address]

            def substitute(match: re.Match[str], values: dict[str, str] = values) -> str:
                return values.get(match.group(1), match.group(0))

            out[address] = {name: _MERGE_FIELD.sub(substitute, items[0]) for name, items in self.fields.items()}
        return out


class FakeMailgun(ScriptedService[Received, Answer]):
    def __init__(self) -> None:
        super().__init__(default=Answer)
        self.ids = 0


def _handler(fake: FakeMailgun) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            fields = parse_qs(body, keep_blank_values=True)
            answer = fake.next_answer(Received(path=self.path, fields=fields))
            if answer.reset:
                self.drop_connection()
                return
            status = answer.status
            if answer.refuse is not None:
                status = 400 if answer.refuse in fields["to"] else 200
            if status == 200:
                with fake.lock:
                    fake.ids += 1
                    payload = {"id": f"<batch{fake.ids}@mailgun.test>", "message": "Queued. Thank you."}
            else:
                payload = {"message": f"fake Mailgun says {status}"}
            data = b"<html>Queued, maybe</html>" if answer.garbled else json.dumps(payload).encode()
            self.send_body(status, data, {} if answer.retry_after is None else {"Retry-After": answer.retry_after})

    return Handler


def mailgun_server() -> AbstractContextManager[FakeMailgun]:
    fake = FakeMailgun()
    return served(fake, _handler(fake))
