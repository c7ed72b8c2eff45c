"""SparkPost's template language, and Tidings' text written so that it shows as it is.

SparkPost reads all inline content (from, reply-to, subject, text, html, headers) as a
template, and its brace macros cannot write a lone brace beside another, so every
brace of our own text becomes a merge field whose value is that brace (`literal`, with
BRACES sent as the call's substitution data). Used for bulk batches
(transports.merge) and for one person's mail (`written_for_default_mailer`). Why:
docs/adr/0009-esp-batch-sending.md.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.handler import DEFAULT_MAILER_ALIAS, DEFAULT_MAILER_BACKEND
from django.core.mail.message import EmailAlternative
from django.utils.module_loading import import_string

ESP_NAME = "SparkPost"  # anymail's esp_name for its SparkPost backend
BRACES = {"tidings_lbrace": "{", "tidings_rbrace": "}"}
_WRITTEN = str.maketrans({"{": "{{{tidings_lbrace}}}", "}": "{{{tidings_rbrace}}}"})


def literal(text: str) -> str:
    """`text` as SparkPost must be given it to show it as it is (with BRACES as substitution data)."""
    return text.translate(_WRITTEN)


def written_for_default_mailer(message: EmailMultiAlternatives) -> EmailMultiAlternatives:
    """`message` (one person's, fully rendered) written brace-safe if the default mailer is SparkPost."""
    # The backend's class, not an instance: making one would build a connection's worth of state.
    if hasattr(settings, "MAILERS"):
        path = str(settings.MAILERS.get(DEFAULT_MAILER_ALIAS, {}).get("BACKEND", DEFAULT_MAILER_BACKEND))
    else:  # Django's older setting, which mailers.default follows without MAILERS
        path = settings.EMAIL_BACKEND
    backend = import_string(path)
    if getattr(backend, "esp_name", None) != ESP_NAME:
        return message
    message.subject = literal(str(message.subject))
    message.body = literal(str(message.body))
    message.from_email = literal(message.from_email)
    message.reply_to = [literal(address) for address in message.reply_to]
    message.alternatives = [
        EmailAlternative(literal(str(content)), mimetype) for content, mimetype in message.alternatives
    ]
    message.merge_global_data = dict(BRACES)  # type: ignore[attr-defined]
    return message
