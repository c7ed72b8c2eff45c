"""The demo mail transport: each message is written to var/outbox/ as an .eml file.

Only used when no MAILER is configured (DEBUG), so the demo needs no mail server;
/dev/outbox/ lists what was captured.
"""

import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

_sequence = itertools.count()


class OutboxBackend(BaseEmailBackend):
    def __init__(self, *, directory: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = Path(directory)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            name = f"{time.time_ns()}-{next(_sequence)}.eml"
            mime = message.message()
            (self.directory / name).write_bytes(mime.as_bytes(policy=mime.policy.clone(linesep="\n")))
        return len(email_messages)
