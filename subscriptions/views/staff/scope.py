"""What every campaign page of the staff area checks first: that the member holds the
permission in the campaign named in the URL, and that each object id the browser sent
belongs to that campaign. A miss is a 404, recorded in the audit trail."""

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from subscriptions import permissions, staff_auth
from subscriptions.models import Campaign


def campaign_for(request: HttpRequest, campaign_id: int, permission: str) -> Campaign:
    permissions.require(request.user, campaign_id, permission, what="campaign", object_id=campaign_id)
    return get_object_or_404(Campaign, pk=campaign_id)  # an operator may name one that does not exist


def object_in[M: Model](
    request: HttpRequest, queryset: QuerySet[M], object_id: object, *, campaign: Campaign, what: str
) -> M:
    """The row of `queryset` with this id in this campaign, else an audited 404."""
    found = queryset.filter(pk=object_id, campaign_id=campaign.pk).first() if str(object_id).isdigit() else None
    if found is None:
        raise permissions.refuse(request.user, what=what, object_id=object_id, campaign_id=campaign.pk)
    return found


def reauthentication(request: HttpRequest, next_url: str) -> HttpResponse | None:
    """A redirect to sign in again when the member has not done so recently, else None."""
    if staff_auth.reauthentication_needed(request):
        return staff_auth.reauthenticate_redirect(request, next_url)
    return None
