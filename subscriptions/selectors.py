"""Read queries shared by several views and services."""

from collections.abc import Collection

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from subscriptions.models import Campaign, PrivacyNotice, SignupForm, Subscriber, Subscription, Suppression


def campaigns_public() -> QuerySet[Campaign]:
    return Campaign.objects.filter(status=Campaign.Status.ACTIVE)


def campaign_get_public(*, slug: str) -> Campaign:
    """The active campaign with this slug, or 404: ended campaigns take no sign-ups."""
    try:
        return campaigns_public().get(slug=slug)
    except Campaign.DoesNotExist:
        raise Http404("No such campaign") from None


def signup_form_get(*, campaign_slug: str, form_slug: str) -> SignupForm:
    """The current version of a form, of any campaign status (the view refuses ended ones)."""
    form = (
        SignupForm.objects.select_related("campaign")
        .filter(campaign__slug=campaign_slug, slug=form_slug, is_current=True)
        .first()
    )
    if form is None:
        raise Http404("No such form")
    return form


def signup_forms_current(*, campaign: Campaign) -> QuerySet[SignupForm]:
    return campaign.forms.filter(is_current=True).order_by("slug")


def privacy_notice_current(*, campaign: Campaign) -> PrivacyNotice | None:
    return campaign.privacy_notices.order_by("-version").first()


def audience(*, campaign: Campaign, topic_ids: Collection[int] | None = None) -> QuerySet[Subscriber]:
    """Everyone who may be mailed or exported as part of an audience: active, not
    restricted (Art. 18), not suppressed, following any of `topic_ids` (everyone
    active when None). The same rule as the fan-out, for counts and exports."""
    people = Subscriber.objects.filter(campaign=campaign, status=Subscriber.Status.ACTIVE, restricted=False).exclude(
        Exists(Suppression.objects.filter(campaign_id=OuterRef("campaign_id"), email_hmac=OuterRef("email_hmac")))
    )
    if topic_ids is None:
        return people
    following = Subscription.objects.filter(subscriber=OuterRef("pk"), topic_id__in=topic_ids, ended_at__isnull=True)
    return people.filter(Exists(following))
