"""Publishing a campaign's sign-up forms.

A published SignupForm version is evidence: consent events point at it, and a person's
data download quotes its title and consent wording as what they agreed to. So editing
a form never changes its row: it publishes the next version (the old one stops being
current and is never written again), as privacy notices are published. Nothing here
deletes a version.
"""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from subscriptions.audit import Actor, audit_record
from subscriptions.models import Campaign, SignupForm, Topic

PUBLISHED = "signup_form_published"
# What a person sees of a version besides its topics: a change to any is a new version.
CONTENT = ("title", "intro", "ask_first_name", "first_name_required", "fields", "consent_wording")


def signup_form_check(
    *,
    campaign: Campaign,
    slug: str,
    topics: Iterable[Topic],
    fields: list[str],
    replacing: SignupForm | None,
) -> None:
    """Raise a ValidationError (by form field) if these cannot be published; changes nothing."""
    errors: dict[str, str] = {}
    current = SignupForm.objects.filter(campaign=campaign, slug=slug, is_current=True).first()
    if replacing is None and SignupForm.objects.filter(campaign=campaign, slug=slug).exists():
        errors["slug"] = (
            "This campaign already has a form at this address: open its current version and edit it to publish "
            "the next one."
        )
    elif replacing is not None and (current is None or current.pk != replacing.pk):
        errors["__all__"] = (
            "A newer version of this form has been published since this page was opened: open the current "
            "version and make the change there. Nothing was published."
        )
    if any(topic.campaign_id != campaign.pk for topic in topics):
        errors["topics"] = "Choose topics of this campaign only."
    declared = {spec["name"] for spec in campaign.extra_fields}
    unknown = sorted(set(fields) - declared)
    if unknown:
        errors["fields"] = f"This campaign does not collect {', '.join(unknown)}."
    if errors:
        raise ValidationError(errors)


def signup_form_publish(
    *,
    campaign: Campaign,
    slug: str,
    title: str,
    consent_wording: str,
    topics: Iterable[Topic],
    actor: Actor,
    intro: str = "",
    ask_first_name: bool = True,
    first_name_required: bool = False,
    fields: list[str] | None = None,
    replacing: SignupForm | None = None,
) -> SignupForm:
    """Publish a new form (version 1) or, with `replacing` (the current version), the next
    version of it. Returns the current version: `replacing` itself when nothing differs."""
    topics = list(topics)
    content: dict[str, Any] = {
        "title": title, "intro": intro, "ask_first_name": ask_first_name,
        "first_name_required": first_name_required, "fields": list(fields or []), "consent_wording": consent_wording,
    }  # fmt: skip
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).get()  # one new version at a time
        signup_form_check(campaign=campaign, slug=slug, topics=topics, fields=content["fields"], replacing=replacing)
        current = SignupForm.objects.filter(campaign=campaign, slug=slug, is_current=True).first()
        if current is not None and _unchanged(current, content, topics):
            return current
        latest = SignupForm.objects.filter(campaign=campaign, slug=slug).aggregate(latest=Max("version"))["latest"]
        if current is not None:
            # The one change a published version ever sees: it stops being the one served.
            SignupForm.objects.filter(pk=current.pk).update(is_current=False)
        form = SignupForm.objects.create(
            campaign=campaign, slug=slug, version=(latest or 0) + 1, is_current=True, **content
        )
        form.topics.set(topics)
        audit_record(
            actor=actor, action=PUBLISHED, campaign_id=campaign.pk, target_type="signup_form", target_id=form.pk,
            slug=slug, version=form.version, replaced=current.pk if current else None,
        )  # fmt: skip
    return form


def _unchanged(current: SignupForm, content: dict[str, Any], topics: list[Topic]) -> bool:
    same_content = all(getattr(current, name) == value for name, value in content.items())
    return same_content and set(current.topics.values_list("pk", flat=True)) == {topic.pk for topic in topics}
