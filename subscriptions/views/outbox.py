"""/dev/outbox/: the demo's captured mail (DEBUG only, never routed in production)."""

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render


def _outbox_dir() -> Path:
    return Path(settings.VAR_DIR) / "outbox"


def _read(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    if not isinstance(message, EmailMessage):
        raise Http404("Unreadable message")
    return message


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def outbox_list(request: HttpRequest) -> HttpResponse:
    paths = sorted(_outbox_dir().glob("*.eml"), reverse=True)[:200]
    messages = [{"name": path.stem, "message": _read(path)} for path in paths]
    return render(request, "dev/outbox_list.html", {"messages_": messages})


def outbox_message(request: HttpRequest, name: str) -> HttpResponse:
    path = _outbox_dir() / f"{name}.eml"
    if "/" in name or not path.is_file():
        raise Http404("No such message")
    message = _read(path)
    context = {"name": name, "message": message, "text": _body(message, "plain"), "headers": message.items()}
    return render(request, "dev/outbox_message.html", context)
