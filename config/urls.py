from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

# One sign-in for everyone: the admin's own login page sends people to allauth's
# (keeping ?next=), where the second factor and the lockout apply.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path(f"{settings.ADMIN_PATH}/", admin.site.urls),
    path(f"{settings.STAFF_PATH}/account/", include("allauth.urls")),
    path(f"{settings.STAFF_PATH}/", include("subscriptions.views.staff.urls")),
    path("", include("subscriptions.urls")),
]
