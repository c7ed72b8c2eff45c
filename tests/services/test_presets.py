import pytest
from django.core.management import call_command

from subscriptions.models import Campaign, PrivacyNotice, SignupForm, Topic
from subscriptions.services.presets import preset_files, preset_load, presets_load

pytestmark = pytest.mark.django_db

PRESET_SLUGS = {
    "police-recruitment",
    "civil-service-jobs",
    "careers-job-alerts",
    "university-careers",
    "civil-service-community",
}


def _snapshot():
    return {
        "campaigns": list(Campaign.objects.order_by("pk").values()),
        "notices": list(PrivacyNotice.objects.order_by("pk").values()),
        "topics": list(Topic.objects.order_by("pk").values()),
        "forms": list(SignupForm.objects.order_by("pk").values()),
        "form_topics": list(SignupForm.topics.through.objects.order_by("pk").values()),
    }


def test_it_creates_one_campaign_per_privacy_notice():
    presets_load()
    assert set(Campaign.objects.values_list("slug", flat=True)) == PRESET_SLUGS
    for campaign in Campaign.objects.all():
        assert campaign.privacy_notices.count() == 1
        assert campaign.forms.filter(is_current=True).exists()


def test_loading_twice_changes_nothing():
    call_command("load_presets", verbosity=0)
    before = _snapshot()
    reports = presets_load()
    assert _snapshot() == before
    assert all(not report.created and not report.changes for report in reports)


def test_police_recruitment_offers_general_updates_and_all_43_forces():
    presets_load()
    campaign = Campaign.objects.get(slug="police-recruitment")
    assert campaign.topics.filter(kind=Topic.Kind.GENERAL).count() == 1
    forces = campaign.topics.filter(kind=Topic.Kind.ENTITY)
    assert forces.count() == 43
    assert forces.filter(name="Metropolitan Police Service").exists()
    assert forces.filter(name="Dyfed-Powys Police").exists()
    force_form = campaign.forms.get(slug="forces", is_current=True)
    assert set(force_form.topics.all()) == set(forces)
    assert campaign.extra_fields == []
    assert campaign.max_retention_days is None


def test_retention_and_lifecycle_settings_follow_the_notices():
    presets_load()
    university = Campaign.objects.get(slug="university-careers")
    assert university.max_retention_days == 1826
    community = Campaign.objects.get(slug="civil-service-community")
    assert community.reconfirm_after_days == 365
    assert community.inbound_unsubscribe is True
    assert {f["name"] for f in community.extra_fields} == {"organisation", "region", "grade", "interests"}


def test_changed_wording_publishes_a_new_version_and_keeps_the_old():
    presets_load()
    data = next(d for d in preset_files() if d["slug"] == "university-careers")
    data["privacy_notice"]["summary"] += "\n\nWe have added a paragraph."
    data["forms"][0]["consent_wording"] = "New consent wording."
    report = preset_load(data=data)
    campaign = Campaign.objects.get(slug="university-careers")
    assert list(campaign.privacy_notices.values_list("version", flat=True)) == [2, 1]
    form_versions = campaign.forms.filter(slug=data["forms"][0]["slug"]).order_by("version")
    assert [(f.version, f.is_current) for f in form_versions] == [(1, False), (2, True)]
    assert len(report.changes) == 2


def test_a_reload_never_overwrites_what_staff_changed():
    presets_load()
    Campaign.objects.filter(slug="police-recruitment").update(name="Renamed by staff", pending_expiry_days=3)
    presets_load()
    campaign = Campaign.objects.get(slug="police-recruitment")
    assert (campaign.name, campaign.pending_expiry_days) == ("Renamed by staff", 3)
