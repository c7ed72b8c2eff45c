from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from subscriptions import auth_audit, signals, staff_auth

        signals.connect()
        staff_auth.connect()
        auth_audit.connect()
