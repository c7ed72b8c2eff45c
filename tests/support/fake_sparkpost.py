"""SparkPost's transmissions API on a local port, so anymail's real SparkPost backend can be driven over HTTP.

Each POST to /api/v1/transmissions/ is recorded as SparkPost would receive it (the
JSON body) and answered from a queue of scripted answers, else "all accepted".
`Received.messages()` renders what each recipient gets, following SparkPost's
template language as documented (https://developers.sparkpost.com/api/template-language/)
as far as Tidings relies on it, and strictly beyond that:

- `{{{key}}}` inserts the value as it is; `{{key}}` HTML-escapes it in the html part;
- recipient substitution_data wins over the transmission's, key by key;
- substituted values are not read again ("expressions inside of variables are not
  executed by default");
- any other expression (a condition, a loop, a macro) raises TemplateError, and so
  does any brace outside an expression, even a lone one, which SparkPost may show
  as it is: Tidings writes every brace of its own as a merge field, so a test fails
  wherever the mailing's own text would have reached the template language as it is.
"""

import html
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.local_http import JsonRequest, QuietHandler, ScriptedService, served

_EXPRESSION = re.compile(r"\{\{\{(.*?)\}\}\}|\{\{(.*?)\}\}", re.DOTALL)
_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")


class TemplateError(ValueError):
    pass


def render(template: str, values: dict[str, str], *, escape: bool) -> str:
    def expand(match: re.Match[str]) -> str:
        raw, escaped = match.group(1), match.group(2)
        key = _KEY.fullmatch(raw if raw is not None else escaped)
        if key is None:
            raise TemplateError(f"not an expression Tidings may send: {match.group()!r}")
        if key.group(1) not in values:  # SparkPost shows "": a test would rather know
            raise TemplateError(f"no value for {key.group(1)!r}")
        value = str(values[key.group(1)])
        return html.escape(value) if escape and escaped is not None else value

    out = _EXPRESSION.sub(expand, template)  # one pass: a value is never read again
    leftover = _EXPRESSION.sub("", template)
    if "{" in leftover or "}" in leftover:
        raise TemplateError(f"unbalanced braces in {template!r}")
    return out


@dataclass
class Answer:
    status: int = 200
    accept: int | None = None  # accept only this many of the call's recipients


@dataclass
class Received(JsonRequest):
    @property
    def to(self) -> list[str]:
        return [recipient["address"]["email"] for recipient in self.body["recipients"]]

    def messages(self) -> dict[str, dict[str, Any]]:
        """What each recipient gets: subject, from, text, html and headers, rendered."""
        content = self.body["content"]
        headers = content.get("headers", {})
        out = {}
        for recipient in self.body["recipients"]:
            values = {**self.body.get("substitution_data", {}), **recipient.get("substitution_data", {})}
            out[recipient["address"]["email"]] = {
                "subject": render(content["subject"], values, escape=False),
                "from": render(content["from"], values, escape=False),
                "reply_to": render(content.get("reply_to", ""), values, escape=False),
                "text": render(content["text"], values, escape=False),
                "html": render(content["html"], values, escape=True),
                "headers": {name: render(value, values, escape=False) for name, value in headers.items()},
                "metadata": recipient.get("metadata", {}),
            }
        return out


class FakeSparkPost(ScriptedService[Received, Answer]):
    def __init__(self) -> None:
        super().__init__(default=Answer)


def _handler(fake: FakeSparkPost) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self):
            request = Received(path=self.path, body=self.read_json())
            answer = fake.next_answer(request)
            count = len(request.to)
            accepted = count if answer.accept is None else answer.accept
            if answer.status == 200:
                data = {
                    "results": {
                        "total_accepted_recipients": accepted,
                        "total_rejected_recipients": count - accepted,
                        "id": f"transmission-{len(fake.received)}",
                    }
                }
            else:
                data = {"errors": [{"message": f"fake SparkPost says {answer.status}"}]}
            self.send_json(answer.status, data)

    return Handler


def sparkpost_server() -> AbstractContextManager[FakeSparkPost]:
    fake = FakeSparkPost()
    return served(fake, _handler(fake))
