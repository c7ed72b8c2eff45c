"""Load the campaign presets shipped in subscriptions/presets/*.json.

Loading is idempotent: a second run with the same files changes nothing. After the
first load a campaign's settings belong to its staff, so a re-run never overwrites
them; it only adds what the files newly offer (topics), and publishes a new privacy
notice or form version when the file's wording differs from the current one, so
consent evidence keeps pointing at what people actually saw.
"""

import datetime
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from django.db import transaction

from subscriptions.models import Campaign, PrivacyNotice, SignupForm, Topic

CAMPAIGN_FIELDS = (
    "name",
    "description",
    "controller_name",
    "controller_address",
    "contact_email",
    "dpo_email",
    "sender_name",
    "sender_email",
    "tracking_mode",
    "pending_expiry_days",
    "reconfirm_after_days",
    "reconfirm_grace_days",
    "max_retention_days",
    "delivery_retention_days",
    "inbound_unsubscribe",
    "inbound_address",
    "extra_fields",
)


@dataclass
class PresetReport:
    slug: str
    created: bool = False
    changes: list[str] = field(default_factory=list)


def preset_files() -> list[dict[str, Any]]:
    folder = resources.files("subscriptions.presets")
    paths = sorted((p for p in folder.iterdir() if p.name.endswith(".json")), key=lambda p: p.name)
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def presets_load() -> list[PresetReport]:
    return [preset_load(data=data) for data in preset_files()]


@transaction.atomic
def preset_load(*, data: dict[str, Any]) -> PresetReport:
    campaign, created = Campaign.objects.get_or_create(
        slug=data["slug"], defaults={name: data[name] for name in CAMPAIGN_FIELDS}
    )
    report = PresetReport(slug=campaign.slug, created=created)
    _load_notice(campaign, data["privacy_notice"], report)
    topics = _load_topics(campaign, data["topics"], report)
    for form_data in data["forms"]:
        _load_form(campaign, form_data, topics, report)
    return report


def _load_notice(campaign: Campaign, data: dict[str, Any], report: PresetReport) -> None:
    current = campaign.privacy_notices.order_by("-version").first()
    wording = {"url": data["url"], "summary": data["summary"], "retention_summary": data["retention_summary"]}
    if current and all(getattr(current, key) == value for key, value in wording.items()):
        return
    published_on = datetime.date.fromisoformat(data["published_on"]) if data.get("published_on") else None
    version = current.version + 1 if current else data["version"]
    PrivacyNotice.objects.create(campaign=campaign, version=version, published_on=published_on, **wording)
    report.changes.append(f"privacy notice v{version}")


def _load_topics(campaign: Campaign, items: list[dict[str, Any]], report: PresetReport) -> dict[str, Topic]:
    existing = {topic.slug: topic for topic in campaign.topics.all()}
    for position, item in enumerate(items):
        if item["slug"] in existing:
            continue
        existing[item["slug"]] = Topic.objects.create(
            campaign=campaign,
            slug=item["slug"],
            name=item["name"],
            kind=item["kind"],
            description=item.get("description", ""),
            position=position,
        )
        report.changes.append(f"topic {item['slug']}")
    return existing


def _load_form(campaign: Campaign, data: dict[str, Any], topics: dict[str, Topic], report: PresetReport) -> None:
    wording = {
        "title": data["title"],
        "intro": data["intro"],
        "ask_first_name": data["ask_first_name"],
        "first_name_required": data["first_name_required"],
        "fields": data["fields"],
        "consent_wording": data["consent_wording"],
    }
    topic_ids = {topics[slug].pk for slug in data["topics"]}
    current = campaign.forms.filter(slug=data["slug"], is_current=True).first()
    if current is not None:
        same_wording = all(getattr(current, key) == value for key, value in wording.items())
        if same_wording and set(current.topics.values_list("pk", flat=True)) == topic_ids:
            return
        SignupForm.objects.filter(pk=current.pk).update(is_current=False)
    version = current.version + 1 if current else 1
    form = SignupForm.objects.create(campaign=campaign, slug=data["slug"], version=version, **wording)
    form.topics.set(topic_ids)
    report.changes.append(f"form {data['slug']} v{version}")
