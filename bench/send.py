"""The sending engine end to end: PostgreSQL, Redis, real Celery workers, Postfix's smtp-sink.

    python -m bench.send [--size 1000000] [--throughput-size 100000] [--workers 2]

In one run, on loopback only:
- the audience: `size` active subscribers, bulk-inserted with COPY;
- fan-out: the one INSERT ... SELECT for a mailing to all of them, timed;
- the ceiling: a raw smtplib loop sending pre-serialised messages of the same size to
  the same sink over one connection;
- throughput: "send now" on a mailing to `throughput-size` people, timed until the
  mailing is marked sent (every message accepted by the sink);
- memory: the real workers send the `size` mailing; each worker process's peak RSS;
- exactly once: smtp-sink dumps every message it accepted; each delivery id must
  appear exactly once, and every delivery must be sent.
Needs /usr/sbin/smtp-sink (Debian package `postfix`; the daemon is never started).
Prints one JSON line.
"""

import argparse
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bench.populate import copy_active_subscribers
from bench.server import bench_env, celery_workers, free_port, prepare_database

if TYPE_CHECKING:
    # Only for annotations: the models import once the benchmark has set Django up.
    from subscriptions.models import Campaign, Mailing, Topic

DATABASE = "tidings_bench_send"
REDIS_DB = 12
SMTP_SINK = "/usr/sbin/smtp-sink"
CEILING_MESSAGES = 20_000
BODY = """Hello {{ first_name|default:"there" }},

**Kent Police** is recruiting police constables now. Applications close on 30 June.

- Starting salary from £28,000, rising with experience
- Full training, on the job, with a degree apprenticeship route
- Flexible shift patterns and a generous pension

[Read about the roles and apply](https://www.example.org/kent/jobs)

You can also come to an open evening at the force headquarters in Maidstone, where
officers and staff will answer your questions about the selection process, fitness
test and vetting. Book a place through the link above.
"""


@contextmanager
def smtp_sink(dump: Path) -> Iterator[int]:
    port = free_port()
    # -u root: it only drops privileges to the user we already are. 1024: listen backlog.
    process = subprocess.Popen([SMTP_SINK, "-u", "root", "-D", str(dump), f"127.0.0.1:{port}", "1024"])
    try:
        _wait_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_port(port: int, seconds: float = 10) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def populate(size: int, throughput_size: int) -> tuple["Campaign", "Topic", "Topic"]:
    """`size` active subscribers to topic A; the first `throughput_size` also follow topic B."""
    from django.db import connection

    from subscriptions.models import Campaign, Topic

    campaign = Campaign.objects.create(
        slug="bench-send", name="Bench", controller_name="Bench Department", sender_name="Bench updates",
        sender_email="updates@bench.example.org",
    )  # fmt: skip
    everyone = Topic.objects.create(campaign=campaign, slug="everyone", name="Everyone", kind="entity")
    some = Topic.objects.create(campaign=campaign, slug="some", name="Some", kind="entity")
    copy_active_subscribers(
        campaign,
        size,
        email=lambda i: f"person{i}@example.com",
        first_name=lambda i: "Zoë" if i % 7 == 0 else f"Person{i}",
    )
    with connection.cursor() as cursor:
        insert = """INSERT INTO subscriptions_subscription (subscriber_id, topic_id, created_at, source, ended_reason)
                    SELECT id, %s, now(), 'import', '' FROM subscriptions_subscriber
                    WHERE campaign_id = %s AND id <= (SELECT min(id) FROM subscriptions_subscriber
                                                      WHERE campaign_id = %s) + %s - 1"""
        cursor.execute(insert, [everyone.pk, campaign.pk, campaign.pk, size])
        cursor.execute(insert, [some.pk, campaign.pk, campaign.pk, throughput_size])
        cursor.execute("ANALYZE subscriptions_subscriber; ANALYZE subscriptions_subscription")
    return campaign, everyone, some


def ceiling(port: int, payload: bytes, count: int) -> float:
    connection = smtplib.SMTP("127.0.0.1", port)
    connection.ehlo()
    started = time.perf_counter()
    for i in range(count):
        connection.sendmail("updates@bench.example.org", [f"ceiling{i}@example.com"], payload)
    elapsed = time.perf_counter() - started
    connection.quit()
    return count / elapsed


def sample_payload(mailing: "Mailing") -> bytes:
    from subscriptions.mail.letter import Copy, Letter
    from subscriptions.mail.mime import MimeTemplate
    from subscriptions.mail.render import mailing_compile

    template = MimeTemplate(letter=Letter(compiled=mailing_compile(mailing=mailing), campaign=mailing.campaign))
    copy = Copy(
        delivery_id=1234567,
        address="person123456@example.com",
        first_name="Person123456",
        unsubscribe_url="http://127.0.0.1/u/123456.abcdefghijklmnopqrstuv/",
        manage_url="http://127.0.0.1/manage/123456.abcdefghijklmnopqrstuv/",
        message_id="<1.x@bench>",
    )
    data = template.as_bytes(copy)
    # Same size, but no delivery header: the ceiling's messages are not counted as deliveries.
    return data.replace(b"X-Tidings-Delivery:", b"X-Tidings-Ceiling:")


def wait_sent(mailing_id: int, seconds: float) -> None:
    from subscriptions.models import Mailing

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Mailing.objects.filter(pk=mailing_id, status="sent").exists():
            return
        time.sleep(0.1)
    raise RuntimeError(f"mailing {mailing_id} not sent within {seconds:.0f}s")


def count_sink(dump: Path) -> Counter[int]:
    grep = subprocess.run(
        ["grep", "-a", "-o", "^X-Tidings-Delivery: [0-9]*", str(dump)], capture_output=True, check=False
    )
    return Counter(int(line.rsplit(b" ", 1)[1]) for line in grep.stdout.splitlines())


def run(size: int, throughput_size: int, workers: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="bench-send-"))
    dump = work / "sink.dump"
    try:
        with smtp_sink(dump) as port:
            env = bench_env(
                database=DATABASE, redis_db=REDIS_DB, MAILER="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
                SMTP_USE_TLS="false", SEND_RATE_PER_SECOND="1000000", SEND_RATE_BURST="2000",
                SEND_BATCH_SIZE="1000", SEND_PARALLELISM=str(workers),
            )  # fmt: skip
            prepare_database(env, DATABASE)
            os.environ.update(env)
            return _measure(env, port, dump, size, throughput_size, workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(
    env: dict[str, str], port: int, dump: Path, size: int, throughput_size: int, workers: int
) -> dict[str, object]:
    import django

    django.setup()
    import config.celery  # noqa: F401 - binds the tasks to the broker

    campaign, everyone, some = populate(size, throughput_size)
    big, fanout_s = _fan_out(campaign, everyone)
    ceiling_rate = ceiling(port, sample_payload(big), CEILING_MESSAGES)
    small, msgs_per_s, peak_kb = _send_with_workers(env, workers, campaign, some, big)
    time.sleep(1)  # the sink writes its dump as each transaction ends
    duplicates, lost = _exactly_once(count_sink(dump), big.pk, small.pk)
    return {
        "bench": "send",
        "size": size,
        "fanout_s": round(fanout_s, 2),
        "msgs_per_s": round(msgs_per_s),
        "ceiling_msgs_per_s": round(ceiling_rate),
        "ratio": round(msgs_per_s / ceiling_rate, 2),
        "worker_peak_rss_mb": round(peak_kb / 1024, 1),
        "duplicates": duplicates,
        "lost": lost,
        "throughput_size": small.sent_count,
        "message_bytes": len(sample_payload(big)),
    }


def _fan_out(campaign: "Campaign", everyone: "Topic") -> tuple["Mailing", float]:
    """A mailing to `everyone`, fanned out (timed) and left `sending`; its seconds."""
    from django.db import transaction

    from subscriptions.models import Mailing
    from subscriptions.services.sending.fan_out import mailing_fan_out

    big = Mailing.objects.create(campaign=campaign, kind="entity_alert", subject="Kent is recruiting", body=BODY)
    big.topics.set([everyone])
    started = time.perf_counter()
    with transaction.atomic():
        recipients = mailing_fan_out(mailing=big)
    fanout_s = time.perf_counter() - started
    Mailing.objects.filter(pk=big.pk).update(status="sending", recipients_count=recipients)
    return big, fanout_s


def _send_with_workers(
    env: dict[str, str], workers: int, campaign: "Campaign", some: "Topic", big: "Mailing"
) -> tuple["Mailing", float, int]:
    """Real workers send a mailing to `some` (timed: messages/s), then `big` (their peak RSS in kB)."""
    from subscriptions.models import Mailing
    from subscriptions.services import mailings
    from subscriptions.services.sending.send_tasks import enqueue_send_tasks

    small = Mailing.objects.create(campaign=campaign, kind="entity_alert", subject="Kent is recruiting", body=BODY)
    small.topics.set([some])
    with celery_workers(env, workers) as worker:
        time.sleep(3)  # let the worker processes boot before the clock starts
        started_at = time.time()
        mailings.mailing_send_now(mailing_id=small.pk)
        wait_sent(small.pk, seconds=600)
        small.refresh_from_db()
        if small.finished_at is None:
            raise RuntimeError(f"mailing {small.pk} is sent but has no finish time")
        msgs_per_s = small.sent_count / (small.finished_at.timestamp() - started_at)

        enqueue_send_tasks(mailing_id=big.pk, count=workers)
        wait_sent(big.pk, seconds=3 * 3600)
        peak_kb = max(_status_kb(child, "VmHWM:") for child in _children(worker.pid))
    return small, msgs_per_s, peak_kb


def _exactly_once(seen: Counter[int], big_id: int, small_id: int) -> tuple[int, int]:
    """(duplicates, lost): delivery ids the sink saw twice or that are not the run's, and
    deliveries not sent or never seen by the sink."""
    from subscriptions.models import Delivery

    runs = Delivery.objects.of_mailing(big_id) | Delivery.objects.of_mailing(small_id)
    deliveries = dict(runs.values_list("pk", "status").iterator())
    duplicates = sum(n - 1 for n in seen.values() if n > 1) + sum(1 for d in seen if d not in deliveries)
    lost = sum(1 for pk, status in deliveries.items() if status != "sent" or pk not in seen)
    return duplicates, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="audience of the fan-out and memory mailing")
    parser.add_argument("--throughput-size", type=int, default=100_000, help="audience of the timed send")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes on the bulk queue")
    args = parser.parse_args()
    throughput_size = min(args.throughput_size, args.size)
    print(json.dumps(run(args.size, throughput_size, args.workers)))


if __name__ == "__main__":
    main()
