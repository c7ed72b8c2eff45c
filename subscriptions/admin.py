"""Django admin: the staff interface until the dashboard exists.

Personal data is shown only where staff need it to answer a request; ledgers are
read-only because they are evidence.
"""

from django.contrib import admin

from subscriptions.models import (
    AuditEvent,
    Campaign,
    ConsentEvent,
    DailyStat,
    Delivery,
    Mailing,
    PrivacyNotice,
    SignupForm,
    Subscriber,
    Subscription,
    Suppression,
    Topic,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class TopicInline(admin.TabularInline):
    model = Topic
    extra = 0
    fields = ["position", "slug", "name", "kind", "public_status", "archived"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "starts_on", "ends_on", "tracking_mode"]
    list_filter = ["status", "tracking_mode"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["api_key_hash", "created_at"]
    inlines = [TopicInline]


@admin.register(PrivacyNotice)
class PrivacyNoticeAdmin(admin.ModelAdmin):
    list_display = ["campaign", "version", "published_on", "url"]
    list_filter = ["campaign"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # A published notice is evidence of what people were shown: never edited.
        if obj is not None:
            return ["campaign", "version", "url", "summary", "retention_summary", "published_on", "published_at"]
        return ["published_at"]


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "kind", "public_status", "archived"]
    list_filter = ["campaign", "kind", "archived"]
    search_fields = ["name", "slug"]


@admin.register(SignupForm)
class SignupFormAdmin(admin.ModelAdmin):
    list_display = ["title", "campaign", "slug", "version", "is_current"]
    list_filter = ["campaign", "is_current"]
    filter_horizontal = ["topics"]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "status", "restricted", "legal_hold", "created_at"]
    list_filter = ["campaign", "status", "restricted", "legal_hold"]
    # Exact match only: staff find a person by their full address, never browse.
    search_fields = ["=email"]
    readonly_fields = ["link_key", "created_at", "confirmed_at", "last_confirmed_at", "withdrawn_at"]

    def get_search_results(self, request, queryset, search_term):  # type: ignore[no-untyped-def]
        if search_term:
            queryset = queryset.filter(email__iexact=search_term.strip())
            return queryset, False
        return queryset, False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "subscriber_id", "topic", "created_at", "ended_at", "source", "ended_reason"]
    list_filter = ["topic__campaign"]


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "subscriber_id", "kind", "source", "created_at"]
    list_filter = ["kind", "source"]


@admin.register(Mailing)
class MailingAdmin(admin.ModelAdmin):
    list_display = ["subject", "campaign", "kind", "status", "scheduled_at", "recipients_count", "sent_count"]
    list_filter = ["campaign", "kind", "status"]
    filter_horizontal = ["topics"]
    readonly_fields = [
        "status",
        "created_by",
        "started_at",
        "finished_at",
        "recipients_count",
        "sent_count",
        "failed_count",
        "skipped_count",
        "unknown_count",
        "bounced_count",
        "complained_count",
        "opens_count",
        "clicks_count",
    ]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "mailing", "subscriber_id", "status", "sent_at"]
    list_filter = ["status"]


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "reason", "created_at"]
    list_filter = ["campaign", "reason"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id"]
    list_filter = ["action"]


@admin.register(DailyStat)
class DailyStatAdmin(ReadOnlyAdmin):
    list_display = ["day", "campaign", "topic", "metric", "reason", "count"]
    list_filter = ["campaign", "metric"]
