"""SendGrid's v3 send API on a local port, so anymail's real SendGrid backend can be driven over HTTP.

Each POST to /v3/mail/send is recorded as SendGrid would receive it (the JSON body)
and answered from a queue of scripted answers, else 202 Accepted. `Received.messages()`
does what SendGrid does with a call: one message per personalization, its
`substitutions` replaced in the subject and both content parts, and its own headers
and custom_args beside the call's. SendGrid does not document whether a substituted
value is itself searched for further tags; `passes` lets a test try both readings.
"""

import json
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.local_http import JsonRequest, QuietHandler, ScriptedService, served


@dataclass
class Answer:
    status: int = 202
    reset_in: float | None = None  # with a 429: X-RateLimit-Reset this many seconds from now
    drop: bool = False  # read the whole request, then drop the connection without answering
    refuse: str | None = None  # answer 400 when this address is among the recipients


@dataclass
class Received(JsonRequest):
    @property
    def to(self) -> list[str]:
        return [to["email"] for personalization in self.body["personalizations"] for to in personalization["to"]]

    def messages(self, *, passes: int = 1) -> dict[str, dict[str, Any]]:
        """What each recipient gets: subject, text and html with their substitutions made
        (`passes` times over), and the headers and custom_args that reach them."""
        content = {part["type"]: part["value"] for part in self.body["content"]}
        out = {}
        for personalization in self.body["personalizations"]:
            [to] = personalization["to"]
            substitutions = personalization.get("substitutions", {})

            def substitute(text: str, substitutions: dict[str, str] = substitutions) -> str:
                for _ in range(passes):
                    for tag, value in substitutions.items():
                        text = text.replace(tag, value)
                return text

            out[to["email"]] = {
                "subject": substitute(personalization.get("subject", self.body["subject"])),
                "text": substitute(content["text/plain"]),
                "html": substitute(content["text/html"]),
                "headers": {**self.body.get("headers", {}), **personalization.get("headers", {})},
                "custom_args": personalization.get("custom_args", {}),
            }
        return out


class FakeSendGrid(ScriptedService[Received, Answer]):
    def __init__(self) -> None:
        super().__init__(default=Answer)


def _handler(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self):
            request = Received(path=self.path, body=self.read_json())
            answer = fake.next_answer(request)
            if answer.drop:
                self.drop_connection()
                return
            status = answer.status
            if answer.refuse is not None:
                status = 400 if answer.refuse in request.to else 202
            errors = {"errors": [{"message": f"fake SendGrid says {status}"}]}
            data = b"" if status == 202 else json.dumps(errors).encode()
            headers = {"X-Message-Id": "call-id-not-per-person"} if status == 202 else {}
            if answer.reset_in is not None:
                headers["X-RateLimit-Reset"] = str(int(time.time() + answer.reset_in))
            self.send_body(status, data, headers)

    return Handler


def sendgrid_server() -> AbstractContextManager[FakeSendGrid]:
    fake = FakeSendGrid()
    return served(fake, _handler(fake))
