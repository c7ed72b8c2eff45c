from django.conf import settings
from django.urls import path

from subscriptions.views import health, public

urlpatterns = [
    path("", public.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("c/<slug:campaign_slug>/", public.campaign_landing, name="campaign-landing"),
]

if settings.DEBUG:
    from subscriptions.views import outbox

    urlpatterns += [
        path("dev/outbox/", outbox.outbox_list, name="outbox-list"),
        path("dev/outbox/<str:name>/", outbox.outbox_message, name="outbox-message"),
    ]
