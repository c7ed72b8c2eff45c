"""My campaigns: where a member lands after signing in."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from subscriptions import permissions
from subscriptions.models import Permission
from subscriptions.services import campaign_summary


@login_required
def my_campaigns(request: HttpRequest) -> HttpResponse:
    granted = permissions.permissions_by_campaign(request.user)
    # The counts are the dashboard permission's ("See the dashboard and counts").
    counted = [campaign_id for campaign_id, held in granted.items() if Permission.DASHBOARD in held]
    summaries = campaign_summary.campaign_summaries(campaign_ids=granted, figures_for=counted)
    return render(
        request,
        "staff/home.html",
        {
            "rows": [
                (summary, granted[summary.campaign.pk], _held(granted[summary.campaign.pk])) for summary in summaries
            ],
            "intake": campaign_summary.intake(),
            "Permission": Permission,
            "is_operator": request.user.is_superuser,
        },
    )


def _held(granted: set[str]) -> str:
    """The permissions held, in their defined order: "draft; send"."""
    labels = [str(label) for value, label in Permission.choices if value in granted]
    return "; ".join(label[0].lower() + label[1:] for label in labels)  # "API keys" keeps its capitals
