"""A campaign's dashboard: active subscribers by topic; sign-ups, confirmations,
withdrawals and erasures per day as charts, tables and CSV; and each sent mailing's
complaint rate against the bulk senders' limits. Counts only, never a person's details.

Everything is chosen by GET parameters (period, sort, order, q), so the page works
without JavaScript; a value that is not one of the choices means the default."""

from dataclasses import dataclass, replace

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.middleware.csp import get_nonce
from django.shortcuts import render
from django.urls import reverse
from django.utils import dateformat
from django.utils.csp import CSP
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from subscriptions.models import Campaign, Permission
from subscriptions.services import dashboard
from subscriptions.services.dashboard import DailySeries
from subscriptions.views.staff.charts import chart_svg
from subscriptions.views.staff.downloads import csv_response
from subscriptions.views.staff.scope import campaign_for

FILTER_MAX_LENGTH = 100
PARAMETERS = ("period", "sort", "order", "q")
TOPIC_PARAMETERS = ("sort", "order", "q")
# A chart is an image: it needs its own <style> and nothing else, ever.
CHART_CSP = {
    "default-src": [CSP.NONE],
    "style-src": [CSP.NONCE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}
# name in the URL: (title, kind of chart)
CHARTS = {
    "joining": ("Sign-ups and confirmations per day", "line"),
    "withdrawals": ("Withdrawals per day, by reason", "stacked_bars"),
    "erasures": ("Erasures per day", "bars"),
}


@dataclass(frozen=True)
class DashboardQuery:
    """The page's GET parameters, each one of its choices (else the default)."""

    period: int = dashboard.DEFAULT_PERIOD
    sort: str = "name"
    order: str = "asc"
    q: str = ""

    @classmethod
    def from_get(cls, get: QueryDict) -> "DashboardQuery":
        period = get.get("period", "")
        sort = get.get("sort", "")
        sort = sort if sort in dashboard.TOPIC_SORTS else "name"
        order = get.get("order", "")
        default_order = "desc" if sort == "count" else "asc"
        q = "".join(character for character in get.get("q", "") if character.isprintable())
        return cls(
            period=int(period) if period in {str(days) for days in dashboard.PERIODS} else dashboard.DEFAULT_PERIOD,
            sort=sort, order=order if order in ("asc", "desc") else default_order,
            q=q.strip()[:FILTER_MAX_LENGTH],
        )  # fmt: skip

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    def url(self, base: str, *, keep: tuple[str, ...] = PARAMETERS, **changes: object) -> str:
        """`base` with the parameters named in `keep`, changed by `changes`; defaults are left out."""
        query = replace(self, **changes)  # type: ignore[arg-type]
        defaults = DashboardQuery(order="desc" if query.sort == "count" else "asc")
        params = QueryDict(mutable=True)
        for name in keep:
            if getattr(query, name) != getattr(defaults, name):
                params[name] = str(getattr(query, name))
        return f"{base}?{params.urlencode()}" if params else base


def _sort_links(query: DashboardQuery, base: str) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (or turns it round), and its aria-sort."""
    links = {}
    for column in dashboard.TOPIC_SORTS:
        if column == query.sort:
            flipped = "asc" if query.descending else "desc"
            sorted_as = "descending" if query.descending else "ascending"
            links[column] = {"url": query.url(base, order=flipped), "aria_sort": sorted_as}
        else:
            first = "desc" if column == "count" else "asc"
            links[column] = {"url": query.url(base, sort=column, order=first), "aria_sort": "none"}
    return links


def _chart_totals(chart: str, series: DailySeries) -> str:
    if chart == "joining":
        return f"{sum(series.signups):,} sign-ups and {sum(series.confirmations):,} confirmations in all"
    if chart == "erasures":
        return f"{sum(series.erasures):,} erasures in all"
    reasons = "; ".join(f"{dashboard.reason_label(r)}: {sum(c):,}" for r, c in series.withdrawals.items())
    return f"{sum(series.withdrawals_total):,} withdrawals in all" + (f" ({reasons})" if reasons else "")


def _chart_alt(chart: str, series: DailySeries) -> str:
    """What the chart shows, in words; the table below it has every day's numbers."""
    dates = f"{dateformat.format(series.since, 'j F Y')} to {dateformat.format(series.until, 'j F Y')}"
    totals = _chart_totals(chart, series)
    return f"Chart of {CHARTS[chart][0].lower()}, {dates}: {totals}. The table below has each day's numbers."


def _daily_context(campaign: Campaign, query: DashboardQuery, series: DailySeries) -> dict[str, object]:
    columns = series.columns()
    period_only = ("period",)
    return {
        "series": series,
        "columns": [heading for heading, _values in columns],
        "totals_by_column": [(heading, sum(values)) for heading, values in columns],
        "rows": list(zip(series.days, zip(*(values for _heading, values in columns), strict=True), strict=True)),
        "charts": [
            {
                "url": query.url(reverse("staff:dashboard_chart", args=[campaign.pk, chart]), keep=period_only),
                "alt": _chart_alt(chart, series),
            }
            for chart in CHARTS
        ],
        "daily_csv_url": query.url(reverse("staff:dashboard_daily_csv", args=[campaign.pk]), keep=period_only),
        "rate": series.confirmation_rate,
    }


@never_cache
@login_required
@require_GET
def dashboard_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.DASHBOARD)
    query = DashboardQuery.from_get(request.GET)
    base = reverse("staff:dashboard", args=[campaign.pk])
    series = dashboard.daily_series(campaign_id=campaign.pk, days=query.period)
    topics = dashboard.topic_counts(
        campaign_id=campaign.pk, sort=query.sort, descending=query.descending, name_contains=query.q
    )
    context = {
        "campaign": campaign, "query": query, **_daily_context(campaign, query, series),
        "periods": [(days, query.url(base, period=days)) for days in dashboard.PERIODS],
        "active_people": dashboard.active_people(campaign_id=campaign.pk),
        "topics": topics, "sort_links": _sort_links(query, base), "clear_filter_url": query.url(base, q=""),
        "topics_csv_url": query.url(reverse("staff:dashboard_topics_csv", args=[campaign.pk]), keep=TOPIC_PARAMETERS),
        "mailings": dashboard.mailings_sent(campaign_id=campaign.pk, since=series.since),
        "complaint_warning": dashboard.COMPLAINT_WARNING * 100, "complaint_limit": dashboard.COMPLAINT_LIMIT * 100,
    }  # fmt: skip
    return render(request, "staff/dashboard.html", context)


def _chart_series(chart: str, series: DailySeries) -> list[tuple[str, list[int]]]:
    if chart == "joining":
        return [("Sign-ups", series.signups), ("Confirmations", series.confirmations)]
    if chart == "erasures":
        return [("Erasures", series.erasures)]
    by_reason = [(dashboard.reason_label(reason), counts) for reason, counts in series.withdrawals.items()]
    return by_reason or [("Withdrawals", series.withdrawals_total)]


@csp_override(CHART_CSP)
@never_cache
@login_required
@require_GET
def dashboard_chart(request: HttpRequest, campaign_id: int, chart: str) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.DASHBOARD)
    if chart not in CHARTS:
        raise Http404("No such chart.")
    query = DashboardQuery.from_get(request.GET)
    series = dashboard.daily_series(campaign_id=campaign.pk, days=query.period)
    title, kind = CHARTS[chart]
    svg = chart_svg(
        kind=kind, title=title, days=series.days, series=_chart_series(chart, series), nonce=str(get_nonce(request))
    )
    return HttpResponse(svg, content_type="image/svg+xml")


@never_cache
@login_required
@require_GET
def dashboard_daily_csv(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.DASHBOARD)
    query = DashboardQuery.from_get(request.GET)
    series = dashboard.daily_series(campaign_id=campaign.pk, days=query.period)
    columns = series.columns()
    rows: list[list[object]] = [["Day", *(heading for heading, _values in columns)]]
    for index, day in enumerate(series.days):
        rows.append([day.isoformat(), *(values[index] for _heading, values in columns)])
    filename = f"{campaign.slug}-daily-{series.since.isoformat()}-to-{series.until.isoformat()}.csv"
    return csv_response(rows, filename)


@never_cache
@login_required
@require_GET
def dashboard_topics_csv(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.DASHBOARD)
    query = DashboardQuery.from_get(request.GET)
    topics = dashboard.topic_counts(
        campaign_id=campaign.pk, sort=query.sort, descending=query.descending, name_contains=query.q
    )
    rows: list[list[object]] = [["Topic", "Kind", "Archived", "Active subscribers"]]
    rows += [[topic.name, topic.kind, "yes" if topic.archived else "no", topic.active] for topic in topics]
    return csv_response(rows, f"{campaign.slug}-active-subscribers-by-topic.csv")
