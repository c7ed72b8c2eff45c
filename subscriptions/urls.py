from django.conf import settings
from django.urls import include, path

from subscriptions.views import api, health, manage, public, reconfirm, signup, unsubscribe, webhooks

urlpatterns = [
    path("", public.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("healthz/ready", health.ready, name="healthz-ready"),
    path("c/<slug:campaign_slug>/", public.campaign_landing, name="campaign-landing"),
    path("c/<slug:campaign_slug>/check-your-email/", signup.check_email, name="signup-check-email"),
    # Before the form pattern, which would otherwise take "manage" for a form slug.
    path("c/<slug:campaign_slug>/manage/", manage.lost_link, name="manage-lost"),
    path("c/<slug:campaign_slug>/<slug:form_slug>/", signup.signup_page, name="signup"),
    path("c/<slug:campaign_slug>/<slug:form_slug>/embed/", signup.signup_embed, name="signup-embed"),
    path("confirm/<str:token>/", signup.confirm, name="signup-confirm"),
    path("api/v1/campaigns/<slug:campaign_slug>/signups", api.signup_create, name="api-signup"),
    path("u/<str:token>/", unsubscribe.unsubscribe, name="unsubscribe"),
    path("manage/<str:token>/", manage.manage, name="manage"),
    path("manage/<str:token>/email/", manage.email_change, name="manage-email"),
    path("manage/<str:token>/download/", manage.download, name="manage-download"),
    path("manage/<str:token>/delete/", manage.delete, name="manage-delete"),
    path("email-change/<str:token>/", manage.email_change_confirm, name="manage-email-confirm"),
    path("reconfirm/<str:token>/", reconfirm.reconfirm, name="reconfirm"),
    path("webhooks/anymail/", include((webhooks.anymail_patterns(), "anymail"))),
]

if settings.DEBUG:
    from subscriptions.views import outbox

    urlpatterns += [
        path("dev/outbox/", outbox.outbox_list, name="outbox-list"),
        path("dev/outbox/<str:name>/", outbox.outbox_message, name="outbox-message"),
    ]
