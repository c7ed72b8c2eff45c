"""Bulk mail over SMTP (SmtpTransport): each person's pre-serialised bytes
(mail.mime.MimeTemplate, built here from the mailing's Letter) written over the SMTP
backend's own connection, one MAIL/RCPT/DATA exchange per person. What each reply
means is base.smtp_fault's to say. Why: docs/adr/0008-pre-serialised-bulk-mime.md.
"""

import contextlib
import email.utils
import smtplib
from collections.abc import Sequence

from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from subscriptions.mail.letter import Copy, Letter
from subscriptions.mail.mime import CRLF, MimeTemplate, dot_stuff
from subscriptions.mail.transports.base import (
    Ambiguous,
    Misconfigured,
    Outcomes,
    Transient,
    send_each,
    smtp_fault,
)


class SmtpTransport:
    max_recipients: int | None = None

    def __init__(self, *, backend: SmtpBackend, letter: Letter, name: str) -> None:
        self.backend = backend
        self.sender = letter.sender
        self.template = MimeTemplate(letter=letter)
        self.name = name
        self.date = email.utils.formatdate(usegmt=True)

    def _connection(self) -> smtplib.SMTP:
        try:
            self.backend.open()
        except smtplib.SMTPAuthenticationError as error:
            self._drop()
            raise smtp_fault(error.smtp_code, error.smtp_error, "AUTH") from error
        except smtplib.SMTPNotSupportedError as error:  # no STARTTLS or no AUTH where the settings want one
            self._drop()
            raise Misconfigured(f"the mail server cannot do what the settings ask: {error}"[:200]) from error
        except (OSError, smtplib.SMTPException) as error:
            self._drop()
            raise Transient(f"cannot connect: {error}"[:200]) from error
        connection = self.backend.connection
        if connection is None:
            raise Transient("cannot connect")
        try:
            connection.ehlo_or_helo_if_needed()
        except (OSError, smtplib.SMTPException) as error:
            self._drop()
            raise Transient(f"no greeting: {error}"[:200]) from error
        return connection

    def _drop(self) -> None:
        connection, self.backend.connection = self.backend.connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def _command(self, connection: smtplib.SMTP, stage: str, expected: tuple[int, ...], *args: str) -> None:
        code, reply = connection.docmd(*args)
        if code in expected:
            return
        if code == 421:  # the server is closing the connection
            self._drop()
        elif code != -1:
            try:
                connection.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()
        raise smtp_fault(code, reply, stage)

    def send(self, item: Copy) -> str:
        data = dot_stuff(self.template.as_bytes(item, date=self.date))
        connection = self._connection()
        try:
            self._command(connection, "MAIL", (250,), "mail", f"FROM:<{self.sender}>")
            self._command(connection, "RCPT", (250, 251), "rcpt", f"TO:<{item.address}>")
            self._command(connection, "DATA", (354,), "data")
            connection.send(data + (b"" if data.endswith(CRLF) else CRLF) + b"." + CRLF)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            # The final "." was not all written, so the server cannot have accepted it.
            self._drop()
            raise Transient(f"connection lost before the message was sent: {error}"[:200]) from error
        try:
            code, reply = connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            raise Ambiguous(f"no reply after the message was sent: {error}"[:200]) from error
        if code != 250:
            raise smtp_fault(code, reply, "end of DATA")
        return item.message_id.strip("<>")

    def send_many(self, items: Sequence[Copy]) -> Outcomes:
        return send_each(self.send, items)

    def close(self) -> None:
        try:
            self.backend.close()
        except (OSError, smtplib.SMTPException):
            self._drop()
