from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import include, path

# One sign-in for everyone: the admin's own login page sends people to allauth's
# (keeping ?next=), where the second factor and the lockout apply.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]


def _allauth_password_change(request: HttpRequest, extra_context: object = None) -> HttpResponse:
    # The admin's own form has no throttle and writes no audit event; allauth's has both.
    return redirect("account_change_password")


admin.site.password_change = _allauth_password_change  # type: ignore[assignment]


def _not_offered(request: HttpRequest) -> HttpResponse:
    # A staff account's address comes from its invitation (or the operator who made it):
    # adding or switching addresses here would let a member claim someone else's
    # invitation, password resets or test sends.
    raise Http404("Email addresses are not managed here.")


urlpatterns = [
    path(f"{settings.ADMIN_PATH}/", admin.site.urls),
    path(f"{settings.STAFF_PATH}/account/email/", _not_offered),
    path(f"{settings.STAFF_PATH}/account/", include("allauth.urls")),
    path(f"{settings.STAFF_PATH}/", include("subscriptions.views.staff.urls")),
    path("", include("subscriptions.urls")),
]
