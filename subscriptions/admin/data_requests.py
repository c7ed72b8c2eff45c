"""The data protection officer's pages in the Subscriber admin, and the staff forms for
campaign end dates and privacy notices.

Each data request is one page: GET shows what will happen and a form, POST calls one
service in `services.privacy`, which checks, acts and audits. The campaign a request is
answered for is the person's own, read from their row on the server (never from the
form), and the member must hold the data requests permission in it. Export and erase
ask the member to prove again that it is them (staff_auth) first.

A person is found by exact address on the "Find a person" page, a POST, so the address
is never in a URL (nor in an access log); a match is opened by id.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from subscriptions import abuse, permissions, staff_auth
from subscriptions.forms import PlainTextField
from subscriptions.models import Campaign, ConsentEvent, Permission, PrivacyNotice, Subscriber, Subscription
from subscriptions.services import lifecycle, privacy

# The requests that hand over or destroy a person's data: a recent sign-in first.
REAUTHENTICATED = frozenset({"export", "erase"})


class RequestForm(forms.Form):
    pass


class ConfirmForm(RequestForm):
    confirm = forms.BooleanField(label="I have checked this is the right person")


class HoldForm(RequestForm):
    reason = forms.CharField(
        max_length=300, widget=forms.Textarea(attrs={"rows": 3}), help_text="Why the data must be kept."
    )


class RectifyForm(RequestForm):
    email = forms.EmailField(max_length=254)
    first_name = PlainTextField(max_length=100, required=False, strip=True)
    attributes = forms.JSONField(required=False, help_text="Only the fields the campaign collects.")


@dataclass(frozen=True)
class RequestPage:
    title: str
    explanation: str
    button: str
    form: type[RequestForm]
    # Calls the service; returns the success message, or a response (the export file).
    act: Callable[[Subscriber, dict[str, Any], Any], str | HttpResponse]


# Each `act` answers for subscriber.campaign_id: the campaign of the row, not of the form.


def _export(subscriber: Subscriber, data: dict[str, Any], actor: Any) -> HttpResponse:
    export = privacy.subscriber_export(campaign_id=subscriber.campaign_id, subscriber_id=subscriber.pk, actor=actor)
    response = JsonResponse(export, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="subscriber-{subscriber.pk}.json"'
    return response


def _rectify(subscriber: Subscriber, data: dict[str, Any], actor: Any) -> str:
    changed = privacy.subscriber_rectify(
        campaign_id=subscriber.campaign_id, subscriber_id=subscriber.pk, actor=actor, email=data["email"],
        first_name=data["first_name"], attributes=data["attributes"] if data["attributes"] is not None else {},
    )  # fmt: skip
    return f"Corrected: {', '.join(changed)}." if changed else "Nothing differed, so nothing was changed."


def _restrict(restricted: bool) -> Callable[[Subscriber, dict[str, Any], Any], str]:
    def act(subscriber: Subscriber, data: dict[str, Any], actor: Any) -> str:
        privacy.subscriber_restrict(
            campaign_id=subscriber.campaign_id, subscriber_id=subscriber.pk, restricted=restricted, actor=actor
        )
        return "Processing is restricted: kept, but sent nothing." if restricted else "The restriction is lifted."

    return act


def _hold(subscriber: Subscriber, data: dict[str, Any], actor: Any) -> str:
    privacy.legal_hold_place(
        campaign_id=subscriber.campaign_id, subscriber_id=subscriber.pk, reason=data["reason"], actor=actor
    )
    return "On legal hold: nothing about this person will be erased until the hold is lifted."


def _lift(subscriber: Subscriber, data: dict[str, Any], actor: Any) -> str:
    outcome = privacy.legal_hold_lift(campaign_id=subscriber.campaign_id, subscriber_id=subscriber.pk, actor=actor)
    if outcome == privacy.ErasureOutcome.ERASED:
        return "The hold is lifted, and the erasure it was delaying is done."
    return "The hold is lifted."


def _erase(subscriber: Subscriber, data: dict[str, Any], actor: Any) -> str:
    outcome = privacy.subscriber_erase_for_staff(
        campaign_id=subscriber.campaign_id, subscriber_id=subscriber.pk, actor=actor
    )
    if outcome == privacy.ErasureOutcome.HELD:
        return "Nothing more will be sent, but the data is on legal hold: it will be erased when the hold is lifted."
    return f"Subscriber {subscriber.pk} is erased."


PAGES = {
    "export": RequestPage(
        "Export this person's data", "Download everything held about them as JSON.", "Download", RequestForm, _export
    ),
    "rectify": RequestPage(
        "Correct this person's details", "Their consent record notes which fields staff corrected.", "Save",
        RectifyForm, _rectify,
    ),
    "restrict": RequestPage(
        "Restrict processing", "They are kept but sent nothing, and left out of every audience.", "Restrict",
        RequestForm, _restrict(True),
    ),
    "unrestrict": RequestPage(
        "Lift the restriction", "They will receive what they subscribed to again.", "Lift", RequestForm,
        _restrict(False),
    ),
    "hold": RequestPage(
        "Place a legal hold", "Any erasure that falls due stops processing but keeps the data.", "Place hold",
        HoldForm, _hold,
    ),
    "lift-hold": RequestPage(
        "Lift the legal hold", "If an erasure was waiting on the hold, it happens now.", "Lift hold", RequestForm,
        _lift,
    ),
    "erase": RequestPage(
        "Erase this person", "Everything about them is deleted now; a suppression entry and the counts remain.",
        "Erase", ConfirmForm, _erase,
    ),
}  # fmt: skip


def _initial(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "first_name": subscriber.first_name,
        "attributes": subscriber.attributes,
    }


def data_request(model_admin: Any, request: HttpRequest, subscriber_id: int, action: str) -> HttpResponse:
    page = PAGES.get(action)
    if page is None:
        raise Http404("No such request")
    if not permissions.has_any(request.user, Permission.DATA_REQUESTS):
        raise permissions.refuse(request.user, what="subscriber", object_id=subscriber_id)
    subscriber = Subscriber.objects.select_related("campaign").filter(pk=subscriber_id).first()
    changelist = reverse("admin:subscriptions_subscriber_changelist")
    if subscriber is None:
        # The same answer as for another campaign's person, so ids reveal nothing.
        raise Http404(f"No subscriber {subscriber_id}: they may already have been erased.")
    permissions.require(
        request.user, subscriber.campaign_id, Permission.DATA_REQUESTS, what="subscriber", object_id=subscriber_id
    )
    if action in REAUTHENTICATED and staff_auth.reauthentication_needed(request):
        return staff_auth.reauthenticate_redirect(request, request.path)
    form = page.form(request.POST if request.method == "POST" else None, initial=_initial(subscriber))
    if request.method == "POST" and form.is_valid():
        try:
            result = page.act(subscriber, form.cleaned_data, request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if isinstance(result, HttpResponse):
                return result
            messages.success(request, result)
            gone = not Subscriber.objects.filter(pk=subscriber_id).exists()
            return redirect(
                changelist if gone else reverse("admin:subscriptions_subscriber_change", args=[subscriber_id])
            )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": page.title,
        "page": page,
        "form": form,
        "subscriber": subscriber,
        **_who_this_is(subscriber),
    }
    return TemplateResponse(request, "admin/subscriptions/subscriber/data_request.html", context)


def _who_this_is(subscriber: Subscriber) -> dict[str, Any]:
    """Enough to check it is the right person before acting: what they get, when and how they came."""
    first = ConsentEvent.objects.filter(subscriber=subscriber).order_by("created_at", "pk").first()
    topics = Subscription.objects.filter(subscriber=subscriber, ended_at__isnull=True).select_related("topic")
    return {
        "topics": [subscription.topic.name for subscription in topics],
        "signed_up_source": first.get_source_display() if first else "",
    }


# A member's searches by address: enough for a day of requests, too few to trawl a list
# of addresses through a stolen session.
FIND_LIMITS = (abuse.Limit("staff-find-minute", 10, 60), abuse.Limit("staff-find-hour", 100, 3600))


class FindForm(forms.Form):
    campaign = forms.TypedChoiceField(coerce=int, help_text="People are found within one campaign at a time.")
    email = forms.CharField(
        max_length=254, label="Their full email address", help_text="An exact match only, whatever the case."
    )

    def __init__(self, *args: Any, campaigns: QuerySet[Campaign], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["campaign"].choices = [(campaign.pk, campaign.name) for campaign in campaigns]  # type: ignore[attr-defined]


def find_person(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Find a person by exact address: a POST, so the address is never in a URL or an access
    log, answered by a redirect to their page by id, or by saying nobody has it."""
    allowed = permissions.admin_campaign_ids(request.user, "subscriber", "find")
    if not allowed:
        raise permissions.refuse(request.user, what="subscriber", object_id="find")
    campaigns = Campaign.objects.filter(pk__in=allowed).order_by("name")
    form = FindForm(request.POST if request.method == "POST" else None, campaigns=campaigns)
    status = 200
    if request.method == "POST":
        asked = request.POST.get("campaign", "")
        if asked.isdigit() and int(asked) not in allowed:
            raise permissions.refuse(request.user, what="campaign", object_id=int(asked), campaign_id=int(asked))
        try:
            abuse.check_limits(key=f"staff-find:{request.user.pk}", limits=FIND_LIMITS)
        except abuse.RateLimited:
            form.add_error(None, "You have searched many times in a short while: wait a few minutes, then try again.")
            status = 429
        else:
            found = _find(request, form)
            if found is not None:
                return redirect(reverse("admin:subscriptions_subscriber_change", args=[found.pk]))
    context = {
        **model_admin.admin_site.each_context(request), "opts": model_admin.model._meta,
        "title": "Find a person", "form": form,
    }  # fmt: skip
    return TemplateResponse(request, "admin/subscriptions/subscriber/find.html", context, status=status)


def _find(request: HttpRequest, form: FindForm) -> Subscriber | None:
    if not form.is_valid():
        return None
    campaign_id = form.cleaned_data["campaign"]
    try:
        found = privacy.subscriber_find(campaign_id=campaign_id, email=form.cleaned_data["email"], actor=request.user)
    except ValidationError as error:
        form.add_error("email", error)
        return None
    if found is None:
        name = Campaign.objects.get(pk=campaign_id).name
        form.add_error(None, f"Nobody with that address in {name}. Check the spelling, or choose another campaign.")
    return found


class CampaignForm(forms.ModelForm):
    erase_now = forms.BooleanField(
        required=False,
        label="Erase now",
        help_text="Only when the end date has already passed: the campaign ends and every subscriber is erased.",
    )

    class Meta:
        model = Campaign
        # Every other setting is the campaign's to edit; the status is set by services.
        exclude = ["status"]  # noqa: DJ006

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        problems = lifecycle.campaign_end_date_problems(
            campaign=self.instance if self.instance.pk else None,
            ends_on=cleaned.get("ends_on"),
            erase_confirmed=bool(cleaned.get("erase_now")),
        )
        for problem in problems:
            self.add_error("ends_on", problem)
        return cleaned


class PrivacyNoticeForm(forms.ModelForm):
    notify_subscribers = forms.BooleanField(
        required=False,
        label="Email every active subscriber",
        help_text="Sends a service notice now, with this summary and a link to the full notice.",
    )

    class Meta:
        model = PrivacyNotice
        fields = ["campaign", "url", "summary", "retention_summary", "published_on"]
