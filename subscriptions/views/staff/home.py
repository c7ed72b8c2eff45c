"""My campaigns: where a member lands after signing in."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from subscriptions import permissions
from subscriptions.models import Campaign, Permission


@login_required
def my_campaigns(request: HttpRequest) -> HttpResponse:
    campaigns = Campaign.objects.filter(pk__in=permissions.campaign_ids(request.user)).order_by("name")
    rows = [(campaign, permissions.permissions_in(request.user, campaign.pk)) for campaign in campaigns]
    return render(
        request, "staff/home.html", {"rows": rows, "Permission": Permission, "is_operator": request.user.is_superuser}
    )
