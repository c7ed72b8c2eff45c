"""A mailing's content, rendered once (mailing_compile): Markdown to sanitised HTML and
plain text, inside the campaign's email template, split into chunks with slots where
each person's values go, so that filling one person's copy is a join and HTML slots
are escaped. Also the checks staff see on a body (body_problems,
personal_url_problems) and the link patterns a batch fills. Why render once:
docs/adr/0008-pre-serialised-bulk-mime.md.
"""

import html
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal, Protocol
from urllib.parse import urlsplit

import markdown as markdown_lib
import nh3
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import mark_safe

from subscriptions.models import Campaign, Mailing, Topic

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "strong", "em", "b", "i", "a", "ul", "ol", "li",
    "blockquote", "code", "pre", "img",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}}
URL_SCHEMES = {"http", "https", "mailto"}
_URL_ATTRIBUTES = {"href", "src"}

# {{ first_name }} or {{ first_name|default:"there" }}: the only personalisation there is.
FIRST_NAME_TAG = re.compile(r"""\{\{\s*first_name\s*(?:\|\s*default\s*:\s*(?:"([^"{}]*)"|'([^'{}]*)')\s*)?\}\}""")
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}")
# Control, line/paragraph separators and bidirectional overrides: nothing a name needs.
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_ANY_FIELD = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_MARKDOWN_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")

SlotKind = Literal["first_name", "unsubscribe_url", "manage_url"]


@dataclass(frozen=True)
class Slot:
    kind: SlotKind
    default: str = ""


Chunks = tuple[str | Slot, ...]


class PersonalValues(Protocol):
    """What differs between two people's copies of one mailing: a Personal, or on the
    bulk path the person's mail.letter.Copy."""

    @property
    def first_name(self) -> str: ...

    @property
    def unsubscribe_url(self) -> str: ...

    @property
    def manage_url(self) -> str: ...


@dataclass(frozen=True)
class Personal:
    """One person's values where no delivery is involved: a preview, a staff test send."""

    first_name: str
    unsubscribe_url: str
    manage_url: str


@dataclass(frozen=True)
class CompiledMailing:
    subject: str
    text: Chunks
    html: Chunks

    def render_text(self, personal: PersonalValues) -> str:
        return _fill(self.text, personal, escape=False)

    def render_html(self, personal: PersonalValues) -> str:
        return _fill(self.html, personal, escape=True)


def clean_first_name(name: str) -> str:
    return " ".join(_UNSAFE_NAME_CHARS.sub(" ", name or "").split())[:100]


def _fill(chunks: Chunks, personal: PersonalValues, *, escape: bool) -> str:
    parts: list[str] = []
    for chunk in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
            continue
        if chunk.kind == "first_name":
            value = clean_first_name(personal.first_name) or chunk.default
        else:
            value = getattr(personal, chunk.kind)
        parts.append(html.escape(value) if escape else value)
    return "".join(parts)


class _HtmlAudit(HTMLParser):
    """Names every tag, attribute and link scheme that the sanitiser would remove."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.add(f"<{tag}>")
            return
        for name, value in attrs:
            if name not in ALLOWED_ATTRIBUTES.get(tag, set()):
                self.problems.add(f'the "{name}" attribute on <{tag}>')
            elif name in _URL_ATTRIBUTES and not _safe_url(value or ""):
                self.problems.add(f"the link {value!r}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


class _Urls(HTMLParser):
    """Every link (a href) and image (img src) in a piece of HTML, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "img": "src"}.get(tag)
        self.found += [(tag, value or "") for name, value in attrs if name == wanted]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _urls(html_text: str) -> list[tuple[str, str]]:
    parser = _Urls()
    parser.feed(html_text)
    parser.close()
    return parser.found


def _personal_allowed(tag: str, tracking_mode: str) -> bool:
    """A link goes to its site as written, so it is the same for everyone. An image may
    carry a personal field only where the campaign tracks people individually: anywhere
    else it would be a tracking pixel the campaign says it does not use."""
    return tag == "img" and tracking_mode == Campaign.TrackingMode.INDIVIDUAL and settings.TRACKING_ENABLED


def personal_url_problems(*, body: str, tracking_mode: str) -> list[str]:
    """Links, and images outside individual tracking, whose URL carries a personal field."""
    fields: dict[str, str] = {}

    def mark(match: re.Match[str]) -> str:
        # Letters and digits only, so Markdown still reads the URL around it as one.
        fields[marker := f"TIDINGSFIELD{len(fields)}X"] = match.group(0)
        return marker

    marked = _ANY_FIELD.sub(mark, body)
    problems = []
    for tag, url in _urls(markdown_lib.markdown(marked, output_format="html")):
        if _personal_allowed(tag, tracking_mode) or not any(marker in url for marker in fields):
            continue
        for marker, written in fields.items():
            url = url.replace(marker, written)
        if tag == "a":
            problems.append(
                f"The link “{url}” contains a personal field. A link goes to its site as written, so the same "
                "link must go to everyone: take the personal field out of the link (it may go in the text)."
            )
        else:
            problems.append(
                f"The image “{url}” contains a personal field. That would tell the image's site who opened the "
                "email, which this campaign's tracking setting does not allow: take the personal field out."
            )
    return problems


def _safe_url(url: str) -> bool:
    scheme = urlsplit(url.strip()).scheme.lower()
    return scheme in URL_SCHEMES or (not scheme and not url.strip().startswith("//"))


def markdown_to_html(body: str) -> str:
    raw = markdown_lib.markdown(body, output_format="html")
    # The audit refuses unsafe input at validation; cleaning again here means a body
    # that somehow skipped validation still cannot carry script into anyone's inbox.
    return nh3.clean(raw, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel=None)


def markdown_to_text(body: str) -> str:
    def link(match: re.Match[str]) -> str:
        is_image, label, url = match.groups()
        if is_image:
            return label
        return url if label.strip() in ("", url) else f"{label} ({url})"

    return _MARKDOWN_LINK.sub(link, body.replace("\r\n", "\n")).strip() + "\n"


def body_problems(body: str) -> list[str]:
    """Why this Markdown body cannot be sent, in words staff can act on; empty if it can."""
    if not body.strip():
        return ["The body is empty: write the message in Markdown."]
    problems = []
    without_names = FIRST_NAME_TAG.sub("", body)
    if _TEMPLATE_SYNTAX.search(without_names):
        problems.append('Only {{ first_name }} (or {{ first_name|default:"there" }}) can be personalised.')
    audit = _HtmlAudit()
    audit.feed(markdown_lib.markdown(without_names, output_format="html"))
    audit.close()
    if audit.problems:
        listed = ", ".join(sorted(audit.problems))
        problems.append(f"The body contains HTML that is not allowed: {listed}. Use Markdown for formatting.")
    return problems


def link_url(*, name: str, token: str) -> str:
    prefix, suffix = link_pattern(name=name)
    return f"{prefix}{token}{suffix}"


def link_pattern(*, name: str) -> tuple[str, str]:
    """What goes either side of a token in this link, so a batch reverses the URL once, not per person."""
    placeholder = "TIDINGSTOKEN"
    try:
        path = reverse(name, args=[placeholder])
    except NoReverseMatch:
        # The public pages are built separately; their paths are fixed by the design.
        path = {"unsubscribe": f"/u/{placeholder}/", "manage": f"/manage/{placeholder}/"}[name]
    prefix, _, suffix = path.partition(placeholder)
    return f"{settings.SITE_URL}{prefix}", suffix


def _names_in_urls(html_body: str, markers: dict[str, Slot], tracking_mode: str) -> set[str]:
    names = [marker for marker, slot in markers.items() if slot.kind == "first_name"]
    urls = [url for tag, url in _urls(html_body) if not _personal_allowed(tag, tracking_mode)]
    return {marker for marker in names if any(marker in url for url in urls)}


def _split(rendered: str, markers: dict[str, Slot]) -> Chunks:
    pattern = re.compile("|".join(re.escape(marker) for marker in markers))
    chunks: list[str | Slot] = []
    position = 0
    for match in pattern.finditer(rendered):
        chunks.append(rendered[position : match.start()])
        chunks.append(markers[match.group(0)])
        position = match.end()
    chunks.append(rendered[position:])
    return tuple(chunk for chunk in chunks if chunk != "")


def mailing_compile(*, mailing: Mailing, topics: Iterable[Topic] | None = None) -> CompiledMailing:
    """Render a mailing's templates once, leaving a slot wherever one person's values go."""
    nonce = secrets.token_hex(8)
    markers: dict[str, Slot] = {}

    def marker(slot: Slot) -> str:
        # Letters and digits only, so neither Markdown nor HTML escaping can alter it.
        text = f"TIDINGSSLOT{nonce}N{len(markers)}X"
        markers[text] = slot
        return text

    def name_marker(match: re.Match[str]) -> str:
        return marker(Slot("first_name", match.group(1) or match.group(2) or ""))

    body = FIRST_NAME_TAG.sub(name_marker, mailing.body)
    campaign: Campaign = mailing.campaign
    context = {
        "campaign": campaign,
        "mailing": mailing,
        "subject": mailing.subject,
        "topics": list(topics if topics is not None else mailing.topics.all()),
        "is_service_notice": mailing.kind == Mailing.Kind.SERVICE_NOTICE,
        "unsubscribe_url": marker(Slot("unsubscribe_url")),
        "manage_url": marker(Slot("manage_url")),
    }
    html_body = markdown_to_html(body)
    rendered_html: str = render_to_string("emails/mailing.html", {**context, "body_html": mark_safe(html_body)})
    rendered_text: str = render_to_string("emails/mailing.txt", {**context, "body_text": markdown_to_text(body)})
    # Validation refuses them, but a mailing saved before it did may still go out: a name
    # inside a URL is left out, so no site (nor a click count) ever gets a person's copy.
    for unsafe in _names_in_urls(html_body, markers, campaign.tracking_mode):
        rendered_html, rendered_text = rendered_html.replace(unsafe, ""), rendered_text.replace(unsafe, "")
    subject = " ".join(mailing.subject.split())
    return CompiledMailing(subject=subject, text=_split(rendered_text, markers), html=_split(rendered_html, markers))
