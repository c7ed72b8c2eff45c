"""Health answers.

/healthz is liveness, for load balancers and container probes: it answers "ok" from
the process itself, with no I/O, so probing it often costs nothing and a slow database
never takes every web process out of the pool at once. /healthz/ready is the detailed
check for operators (database, cache, broker, the sign-up backlog): it sends a query, a
Redis write and a broker connection, so only DEBUG or a request bearing
HEALTH_CHECK_TOKEN gets it; anyone else gets 404.
"""

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache

from config.celery import app as celery_app
from subscriptions.services.signup import stream


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("healthz", "ok", timeout=5)
    if cache.get("healthz") != "ok":
        raise RuntimeError("cache did not return the value written")


def _check_broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def _operator_may_see(request: HttpRequest) -> bool:
    token = settings.HEALTH_CHECK_TOKEN
    if not token:
        return settings.DEBUG
    offered = request.headers.get("Authorization", "")
    return offered.startswith("Bearer ") and constant_time_compare(offered.removeprefix("Bearer "), token)


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    if not _operator_may_see(request):
        raise Http404
    checks: dict[str, Any] = {}
    for name, check in (("database", _check_database), ("cache", _check_cache), ("broker", _check_broker)):
        try:
            check()
            checks[name] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure makes the probe fail
            checks[name] = f"error: {type(error).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "error", "checks": checks}
    if checks["cache"] == "ok":
        # Not a check: sign-ups accepted and not yet recorded, for dashboards and alerts.
        body["signup_backlog"] = stream.backlog()
    return JsonResponse(body, status=200 if healthy else 503)
