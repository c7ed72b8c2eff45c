"""Read queries shared by several views and services."""

from collections.abc import Collection
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from subscriptions.models import Campaign, PrivacyNotice, SignupForm, Subscriber, Subscription, Suppression, Topic


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


@dataclass(frozen=True)
class SignupPage:
    """What a sign-up request needs besides the submission: the form's current version
    (with its campaign), the topics it offers in page order, and the current notice."""

    form: SignupForm
    topics: list[Topic]
    privacy_notice: PrivacyNotice | None
    # What callers derive from this version and keep with it (the form's fields).
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Every row a SignupPage is built from, by its row version: PostgreSQL gives each
# version of a row a new (xmin, ctid), whatever wrote it (admin, a service's
# QuerySet.update(), a migration, psql), so no code path can forget to invalidate.
# xmin alone would not do: a transaction that updates a row it inserted keeps it.
_SIGNUP_PAGE_VERSION = """
SELECT f.id, concat_ws('/', f.xmin, f.ctid, c.xmin, c.ctid,
  (SELECT string_agg(concat_ws(':', n.id, n.xmin, n.ctid), ',' ORDER BY n.id)
     FROM subscriptions_privacynotice n WHERE n.campaign_id = c.id),
  (SELECT string_agg(concat_ws(':', ft.id, t.id, t.xmin, t.ctid), ',' ORDER BY ft.id)
     FROM subscriptions_signupform_topics ft JOIN subscriptions_topic t ON t.id = ft.topic_id
     WHERE ft.signupform_id = f.id))
FROM subscriptions_signupform f JOIN subscriptions_campaign c ON c.id = f.campaign_id
WHERE c.slug = %s AND f.slug = %s AND f.is_current
"""


@dataclass
class _CachedPage:
    version: str  # the row versions it was built from
    page: SignupPage
    checked_at: float = 0.0  # monotonic time the version was last confirmed


# Per process: (campaign slug, form slug) -> the page. A handful of forms.
_signup_pages: dict[tuple[str, str], _CachedPage] = {}
_SIGNUP_PAGES_KEPT = 256


def signup_page_get(*, campaign_slug: str, form_slug: str, reuse_within: float = 0.0) -> SignupPage:
    """The current version of a form with its topics and notice, or 404. Any campaign
    status: the view refuses ended ones.

    Every call asks PostgreSQL, in one small query, for the row versions of everything
    the page is built from, and reuses this process's copy while they are unchanged:
    an ended campaign, a new form version, an edited topic or a new notice is seen by
    the very next request, in every process.

    With `reuse_within`, a copy checked that many seconds ago or less is reused without
    asking: the sign-up POST does this, since what changed in that second is caught
    when the sign-up is recorded (an ended campaign records nothing; an archived topic
    is never subscribed to at confirmation)."""
    if connection.vendor != "postgresql":
        return _signup_page_load(campaign_slug=campaign_slug, form_slug=form_slug)
    key = (campaign_slug, form_slug)
    cached = _signup_pages.get(key)
    if cached is not None and monotonic() - cached.checked_at <= reuse_within:
        return cached.page
    with connection.cursor() as cursor:
        cursor.execute(_SIGNUP_PAGE_VERSION, [campaign_slug, form_slug])
        row = cursor.fetchone()
    if row is None:
        _signup_pages.pop(key, None)
        raise Http404("No such form")
    version = f"{row[0]}/{row[1]}"
    if cached is None or cached.version != version:
        cached = _CachedPage(version, _signup_page_load(campaign_slug=campaign_slug, form_slug=form_slug))
        if len(_signup_pages) >= _SIGNUP_PAGES_KEPT:
            _signup_pages.clear()
        _signup_pages[key] = cached
    cached.checked_at = monotonic()
    return cached.page


def signup_pages_forget() -> None:
    """Drop this process's copies (tests, whose rows come and go between cases)."""
    _signup_pages.clear()


def _signup_page_load(*, campaign_slug: str, form_slug: str) -> SignupPage:
    form = signup_form_get(campaign_slug=campaign_slug, form_slug=form_slug)
    topics = list(form.topics.filter(archived=False).order_by("position", "name"))
    return SignupPage(form=form, topics=topics, privacy_notice=privacy_notice_current(campaign=form.campaign))


def signup_forms_current(*, campaign: Campaign) -> QuerySet[SignupForm]:
    return campaign.forms.filter(is_current=True).order_by("slug")


def privacy_notice_current(*, campaign: Campaign) -> PrivacyNotice | None:
    return campaign.privacy_notices.order_by("-version").first()


def subscriber_locked(*, subscriber_id: int) -> Subscriber | None:
    """The subscriber with their campaign, row-locked until the transaction ends; None
    when there is no such person (any more). Call inside transaction.atomic()."""
    return (
        Subscriber.objects.select_for_update(of=("self",)).select_related("campaign").filter(pk=subscriber_id).first()
    )


def audience(*, campaign: Campaign, topic_ids: Collection[int] | None = None) -> QuerySet[Subscriber]:
    """Everyone a mailing to `topic_ids` may reach (everyone when None): active, not
    restricted (Art. 18), not suppressed, following any of the topics. The PostgreSQL
    fan-out and claim state this rule in their own SQL (services/sending); this query
    counts an audience (services/mailings) and is the SQLite demo's fan-out
    (services/sending/portable)."""
    people = Subscriber.objects.filter(campaign=campaign, status=Subscriber.Status.ACTIVE, restricted=False).exclude(
        Exists(Suppression.objects.filter(campaign_id=OuterRef("campaign_id"), email_hmac=OuterRef("email_hmac")))
    )
    if topic_ids is None:
        return people
    following = Subscription.objects.filter(subscriber=OuterRef("pk"), topic_id__in=topic_ids, ended_at__isnull=True)
    return people.filter(Exists(following))
