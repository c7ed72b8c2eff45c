"""The zero-configuration demo sends: SQLite under VAR_DIR, tasks in-process, mail to the
outbox. Run for real, in a fresh process with none of the test suite's services, as
`make run` would, against a SQLite database file."""

import json
import os
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Staff press "Send now" on a newsletter to a confirmed subscriber (what the admin
# action calls), then the script reports the mailing as staff would see it.
SEND_NOW = """
import json
from django.utils import timezone
from subscriptions.models import AuditEvent, Campaign, Mailing, Subscriber, Subscription, Topic
from subscriptions.services import mailings

campaign = Campaign.objects.create(
    slug=CAMPAIGN_SLUG, name="Demo", controller_name="Demo", sender_name="Demo", sender_email="news@demo.example.org"
)
news = Topic.objects.create(campaign=campaign, slug="news", name="News")
other = Topic.objects.create(campaign=campaign, slug="other", name="Other")
person = Subscriber.objects.create(
    campaign=campaign, email="demo.person@example.org", first_name="Dana", status="active", confirmed_at=timezone.now()
)
Subscription.objects.create(subscriber=person, topic=news)
Subscription.objects.create(subscriber=person, topic=other)
not_in_audience = Subscriber.objects.create(
    campaign=campaign, email="elsewhere@example.org", status="active", confirmed_at=timezone.now()
)
Subscription.objects.create(subscriber=not_in_audience, topic=Topic.objects.create(campaign=campaign, slug="x"))
mailing = mailings.mailing_create(
    campaign=campaign, kind="newsletter", subject="Demo news", body="Hello {{ first_name }}", topics=[news, other]
)
mailings.mailing_send_now(mailing_id=mailing.pk)
mailing.refresh_from_db()
failures = list(AuditEvent.objects.filter(action="mailing_start_failed").values_list("details", flat=True))
print(json.dumps({
    "status": mailing.status, "recipients": mailing.recipients_count, "sent": mailing.sent_count,
    "unknown": mailing.unknown_count, "failures": failures,
}))
"""


def _send_now(campaign_slug: str) -> str:
    return f"CAMPAIGN_SLUG = {campaign_slug!r}\n{SEND_NOW}"


def _demo_env(var_dir: Path) -> dict[str, str]:
    services = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MAILER", "TEST_DATABASE_NAME")
    clean = {key: value for key, value in os.environ.items() if key not in services}
    return {**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "VAR_DIR": str(var_dir)}


def _manage(var_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**_demo_env(var_dir), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    var_dir = tmp_path_factory.mktemp("demo-var")
    migrated = _manage(var_dir, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    assert (var_dir / "tidings.sqlite3").exists(), "the demo runs on SQLite"
    return var_dir


def test_send_now_in_the_demo_delivers_to_the_outbox(demo):
    result = _manage(demo, "shell", "-c", _send_now("works"))
    assert result.returncode == 0, result.stderr
    mailing = json.loads(result.stdout.strip().splitlines()[-1])
    assert mailing == {"status": "sent", "recipients": 1, "sent": 1, "unknown": 0, "failures": []}, result.stderr
    (message,) = [message_from_bytes(path.read_bytes(), policy=policy.default) for path in (demo / "outbox").iterdir()]
    assert message["Subject"] == "Demo news"
    assert message["To"] == "Dana <demo.person@example.org>" or "demo.person@example.org" in message["To"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Hello Dana" in message.get_body(("plain",)).get_content()


def test_a_mailing_that_cannot_start_in_the_demo_says_why(demo):
    """Mailgun chosen without its key: the mailing goes back to draft, and says why."""
    script = _send_now("misconfigured")
    result = _manage(demo, "shell", "-c", script, MAILER="mailgun")
    assert result.returncode == 0, result.stderr
    mailing = json.loads(result.stdout.strip().splitlines()[-1])
    assert mailing["status"] == "draft"
    assert mailing["recipients"] == mailing["sent"] == mailing["unknown"] == 0
    (failure,) = mailing["failures"]
    assert "api_key" in failure["reason"]
