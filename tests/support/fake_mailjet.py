"""Mailjet's Send API v3.1 on a local port, so anymail's real Mailjet backend can be driven over HTTP.

Each POST to /v3.1/send is recorded as Mailjet would receive it (the JSON body) and
answered from a queue of scripted answers, else every message a success with a
MessageID of its own. As Mailjet documents for a call of several messages, a refused
message is answered with its errors (HTTP 400) while the others are still sent.
`Received.messages()` gives what each recipient gets: the call's Globals with their
message's own fields over them. No template language is applied: a call that turns
it on is refused, since Tidings never relies on it.
"""

from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.local_http import JsonRequest, QuietHandler, ScriptedService, served


@dataclass
class Answer:
    status: int = 200
    refuse: str | None = None  # this address's message is answered with errors
    lower: bool = False  # echo each address lower-cased


@dataclass
class Received(JsonRequest):
    @property
    def to(self) -> list[str]:
        return [to["Email"] for message in self.body["Messages"] for to in message["To"]]

    def messages(self) -> dict[str, dict[str, Any]]:
        out = {}
        for message in self.body["Messages"]:
            merged = {**self.body.get("Globals", {}), **message}
            [to] = merged["To"]
            out[to["Email"]] = merged
        return out


class FakeMailjet(ScriptedService[Received, Answer]):
    def __init__(self) -> None:
        super().__init__(default=Answer)


def _results(request: Received, answer: Answer, serial: int) -> tuple[int, dict[str, Any]]:
    results = []
    for index, message in enumerate(request.body["Messages"]):
        [to] = message["To"]
        if to["Email"] == answer.refuse:
            errors = [{"ErrorCode": "mj-0013", "StatusCode": 400, "ErrorMessage": "not a valid address"}]
            results.append({"Status": "error", "Errors": errors})
        else:
            message_id = serial * 1000 + index
            echoed = to["Email"].lower() if answer.lower else to["Email"]
            results.append({"Status": "success", "To": [{"Email": echoed, "MessageID": message_id}]})
    status = 400 if any(result["Status"] == "error" for result in results) else 200
    return status, {"Messages": results}


def _handler(fake: FakeMailjet) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self):
            body = self.read_json()
            request = Received(path=self.path, body=body)
            answer = fake.next_answer(request)
            templated = [body.get("Globals", {}), *body["Messages"]]
            if any(part.get("TemplateLanguage") for part in templated):
                status, data = 400, {"ErrorCode": "fake", "StatusCode": 400, "ErrorMessage": "no templates here"}
            elif answer.status != 200:
                status = answer.status
                data = {"ErrorCode": "fake", "StatusCode": status, "ErrorMessage": f"fake Mailjet says {status}"}
            else:
                status, data = _results(request, answer, len(fake.received))
            self.send_json(status, data)

    return Handler


def mailjet_server() -> AbstractContextManager[FakeMailjet]:
    fake = FakeMailjet()
    return served(fake, _handler(fake))
