"""The demo transport writes each message where /dev/outbox/ can read it back."""

import email
import email.policy

from django.core.mail import EmailMultiAlternatives

from subscriptions.mail.outbox import OutboxBackend

# Not ASCII (an en dash, an accent), so the header must be encoded and decoded again.
SUBJECT = "Confirm \u2013 \u00e9"


def test_it_writes_each_message_as_a_readable_eml_file(tmp_path):
    message = EmailMultiAlternatives(SUBJECT, "Open https://x.test/confirm/abc/", "from@x.test", ["to@x.test"])
    message.attach_alternative("<p>Open it</p>", "text/html")

    sent = OutboxBackend(directory=str(tmp_path)).send_messages([message, message])

    files = sorted(tmp_path.glob("*.eml"))
    assert sent == 2
    assert len(files) == 2
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == SUBJECT
    assert "https://x.test/confirm/abc/" in parsed.get_body(preferencelist=("plain",)).get_content()
