"""A campaign's audit trail, for members who answer data requests: read it, filter it
by action and date, export it as CSV. Nothing here changes or deletes an event; an
export is itself an event."""

import csv
import datetime
import json
from collections.abc import Iterator

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from subscriptions.audit import audit_record
from subscriptions.models import AuditEvent, Campaign, Permission
from subscriptions.views.staff.downloads import csv_cell
from subscriptions.views.staff.scope import campaign_for, reauthentication

PAGE_SIZE = 50
# The designed filters; any other parameter in the query string is refused, not ignored.
QUERY_PARAMETERS = frozenset({"action", "date_from", "date_to", "page"})
CSV_COLUMNS = ["time", "actor", "operator", "action", "target_type", "target_id", "details"]


class TrailFilterForm(forms.Form):
    action = forms.ChoiceField(label="Action", required=False)
    date_from = forms.DateField(label="From (date)", required=False, help_text="For example, 2026-12-01")
    date_to = forms.DateField(label="To (date, included)", required=False, help_text="For example, 2026-12-31")

    def __init__(self, data: object, *, actions: list[str]) -> None:
        super().__init__(data)  # type: ignore[arg-type]
        self.fields["action"].choices = [("", "Any action"), *((action, action) for action in actions)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date must be the same as or after the start date.")
        return data


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _trail(campaign: Campaign, form: TrailFilterForm) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(campaign_id=campaign.pk).order_by("-created_at", "-id")
    if not form.is_bound:
        return events
    if not form.is_valid():
        return events.none()
    data = form.cleaned_data
    if data["action"]:
        events = events.filter(action=data["action"])
    if data["date_from"]:
        events = events.filter(created_at__gte=_start_of(data["date_from"]))
    if data["date_to"]:
        events = events.filter(created_at__lt=_start_of(data["date_to"] + datetime.timedelta(days=1)))
    return events


def _filtered(request: HttpRequest, campaign: Campaign) -> tuple[TrailFilterForm, QuerySet[AuditEvent]] | HttpResponse:
    unknown = sorted(set(request.GET) - QUERY_PARAMETERS)
    if unknown:
        return HttpResponse(f"Unknown filter: {', '.join(unknown)[:100]}", status=400, content_type="text/plain")
    actions = AuditEvent.objects.filter(campaign_id=campaign.pk).values_list("action", flat=True)
    form = TrailFilterForm(request.GET or None, actions=sorted(set(actions)))
    return form, _trail(campaign, form)


@login_required
@require_GET
def audit_trail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.DATA_REQUESTS)
    filtered = _filtered(request, campaign)
    if isinstance(filtered, HttpResponse):
        return filtered
    form, events = filtered
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"campaign": campaign, "form": form, "page": page, "query": query.urlencode()}
    return render(request, "staff/audit_trail.html", context, status=400 if form.errors else 200)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=2000):
        details = json.dumps(event.details, sort_keys=True, ensure_ascii=False)
        operator = "yes" if event.actor_is_operator else "no"
        target_id = "" if event.target_id is None else event.target_id
        row = [event.created_at.isoformat(), event.actor_name, operator, event.action, event.target_type, target_id]
        yield writer.writerow([csv_cell(value) for value in [*row, details]])


@login_required
@require_GET
def audit_trail_export(request: HttpRequest, campaign_id: int) -> HttpResponseBase:
    campaign = campaign_for(request, campaign_id, Permission.DATA_REQUESTS)
    if again := reauthentication(request, request.get_full_path()):
        return again
    filtered = _filtered(request, campaign)
    if isinstance(filtered, HttpResponse):
        return filtered
    form, events = filtered
    if form.errors:
        return HttpResponse("Correct the filters on the audit trail page first.", status=400, content_type="text/plain")
    filters = {key: value for key, value in request.GET.items() if key != "page" and value}
    # Recorded before the file is written, so the export is in the trail it exports.
    audit_record(
        actor=request.user, action="audit_trail_exported", campaign_id=campaign.pk, target_type="campaign",
        target_id=campaign.pk, filters=filters,
    )  # fmt: skip
    response = StreamingHttpResponse(_rows(events), content_type="text/csv; charset=utf-8")
    filename = f"audit-trail-{campaign.slug}-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
