"""/dev/outbox/: routed only when DEBUG is on at start-up, so these tests bring their own routes."""

from pathlib import Path

import pytest
from django.core.mail import EmailMultiAlternatives
from django.http import Http404
from django.test import RequestFactory
from django.urls import include, path

from subscriptions.views import outbox

urlpatterns = [
    path("", include("subscriptions.urls")),
    path("dev/outbox/", outbox.outbox_list, name="outbox-list"),
    path("dev/outbox/<str:name>/", outbox.outbox_message, name="outbox-message"),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture
def outbox_dir(settings, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path
    directory = tmp_path / "outbox"
    directory.mkdir()
    return directory


def write_message(directory: Path, name: str, *, subject: str = "Confirm your email address") -> None:
    message = EmailMultiAlternatives(
        subject=subject,
        body="Confirm here: https://tidings.test/confirm/abc123/\n\nThanks.",
        from_email="Police recruitment <updates@police.example.org>",
        to=["person@example.com"],
    )
    message.attach_alternative('<p>HTML only</p><script>alert("x")</script>', "text/html")
    (directory / f"{name}.eml").write_bytes(message.message().as_bytes())


def test_the_list_shows_each_message_newest_first(outbox_dir):
    write_message(outbox_dir, "100-0", subject="Older")
    write_message(outbox_dir, "200-0", subject="Newer")
    content = outbox.outbox_list(RequestFactory().get("/dev/outbox/")).content.decode()
    assert content.index("Newer") < content.index("Older")
    assert "person@example.com" in content
    assert 'href="/dev/outbox/200-0/"' in content


def test_the_list_says_when_there_is_no_mail(outbox_dir):
    content = outbox.outbox_list(RequestFactory().get("/dev/outbox/")).content.decode()
    assert "No email yet" in content


def test_a_message_shows_its_headers_and_text_with_clickable_links_but_never_its_html(outbox_dir):
    write_message(outbox_dir, "100-0")
    response = outbox.outbox_message(RequestFactory().get("/dev/outbox/100-0/"), name="100-0")
    content = response.content.decode()
    assert "Confirm your email address" in content
    assert '<a href="https://tidings.test/confirm/abc123/"' in content
    assert "<summary" in content
    assert "Content-Type" in content
    assert "HTML only" not in content
    assert 'alert("x")' not in content


def test_an_unknown_message_is_not_found(outbox_dir):
    with pytest.raises(Http404):
        outbox.outbox_message(RequestFactory().get("/dev/outbox/nope/"), name="nope")
