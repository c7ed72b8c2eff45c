from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from subscriptions import (
            auth_audit,
            signals,
            staff_auth,
            tasks,  # noqa: F401  registers the tasks that services enqueue by name
        )

        signals.connect()
        staff_auth.connect()
        auth_audit.connect()
