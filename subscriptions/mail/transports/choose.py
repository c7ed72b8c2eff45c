"""Which transport a mailer gets for a mailing: pre-serialised bytes over SMTP, one
call for many people where the ESP batches (merge data, or Mailjet's whole
messages), else one call per person."""

from django.core.mail import mailers
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from subscriptions.mail.letter import Letter
from subscriptions.mail.transports.anymail import MessageTransport
from subscriptions.mail.transports.base import Transport
from subscriptions.mail.transports.mailjet import MailjetBatchTransport, messages_per_call
from subscriptions.mail.transports.merge import MergeBatchTransport, batching_for
from subscriptions.mail.transports.smtp import SmtpTransport


def transport_for(*, alias: str, letter: Letter) -> Transport:
    backend = mailers[alias]
    if isinstance(backend, SmtpBackend):
        return SmtpTransport(backend=backend, letter=letter, name=alias)
    batching = batching_for(backend)
    if batching is not None:
        return MergeBatchTransport(backend=backend, letter=letter, name=alias, batching=batching)
    per_call = messages_per_call(backend)
    if per_call is not None:
        return MailjetBatchTransport(backend=backend, letter=letter, name=alias, per_call=per_call)
    return MessageTransport(backend=backend, letter=letter, name=alias)
