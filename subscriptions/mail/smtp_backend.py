"""Django's SMTP backend for one person's mail (SmtpMailer; config/settings.py uses it
for MAILER=smtp), with a refused recipient turned into RecipientRefused (5xx, not
retried) or RecipientDeferred (4xx, retried), neither naming the address. Bulk mail
over SMTP goes through transports.smtp, which reads the same connection settings.
"""

import smtplib
from typing import Any

from django.core.mail.backends.smtp import EmailBackend as SmtpBackend


class RecipientRefused(Exception):
    """A transactional email's only recipient was refused for good (SMTP 5xx at RCPT).

    Not an OSError, unlike smtplib's SMTPRecipientsRefused, so the tasks that retry
    OSErrors (a dropped connection) do not retry this; and it names no address, so
    neither does the log line a failed task writes.
    """


class RecipientDeferred(OSError):
    """Refused for now (SMTP 4xx at RCPT): an OSError, so the task retries it; no address."""


class SmtpMailer(SmtpBackend):
    """Django's SMTP backend, for one person's mail (confirmations, notices), with its
    refused recipients turned into RecipientRefused or RecipientDeferred."""

    def _send(self, email_message: Any) -> bool:
        try:
            return bool(super()._send(email_message))  # type: ignore[misc]  # private, not in the stubs
        except smtplib.SMTPRecipientsRefused as error:
            codes = sorted(code for code, _ in error.recipients.values())
            code = codes[0] if codes else 550
            # "from None": the chained original, which quotes the address, must not reach a traceback.
            if all(500 <= each < 600 for each in codes):
                raise RecipientRefused(f"SMTP {code} at RCPT: refused for good") from None
            raise RecipientDeferred(f"SMTP {code} at RCPT: refused for now") from None
