from django.urls import path

from subscriptions.views.staff import api_keys, audit_trail, dashboard, home, invitations, team

app_name = "staff"

campaign = "campaigns/<int:campaign_id>"

urlpatterns = [
    path("", home.my_campaigns, name="home"),
    path("invitations/<str:token>/", invitations.invitation_accept, name="invitation_accept"),
    path(f"{campaign}/", dashboard.dashboard_page, name="dashboard"),
    path(f"{campaign}/dashboard/<slug:chart>.svg", dashboard.dashboard_chart, name="dashboard_chart"),
    path(f"{campaign}/dashboard/daily.csv", dashboard.dashboard_daily_csv, name="dashboard_daily_csv"),
    path(f"{campaign}/dashboard/topics.csv", dashboard.dashboard_topics_csv, name="dashboard_topics_csv"),
    path(f"{campaign}/team/", team.team, name="team"),
    path(f"{campaign}/team/invite/", team.invite, name="team_invite"),
    path(f"{campaign}/team/members/<int:membership_id>/", team.member, name="team_member"),
    path(f"{campaign}/team/members/<int:membership_id>/remove/", team.member_remove, name="team_member_remove"),
    path(f"{campaign}/team/invitations/<int:invitation_id>/revoke/", team.invitation_revoke, name="invitation_revoke"),
    path(f"{campaign}/api-keys/", api_keys.api_key_list, name="api_keys"),
    path(f"{campaign}/api-keys/create/", api_keys.api_key_create, name="api_key_create"),
    path(f"{campaign}/api-keys/<int:key_id>/rotate/", api_keys.api_key_rotate, name="api_key_rotate"),
    path(f"{campaign}/api-keys/<int:key_id>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"),
    path(f"{campaign}/audit-trail/", audit_trail.audit_trail, name="audit_trail"),
    path(f"{campaign}/audit-trail/export/", audit_trail.audit_trail_export, name="audit_trail_export"),
]
