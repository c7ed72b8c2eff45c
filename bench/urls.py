from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def hello(request: HttpRequest) -> HttpResponse:
    """The ceiling: a Django view that does nothing, through the same middleware stack."""
    return HttpResponse("hello")


urlpatterns = [
    path("bench/hello/", hello),
    path("", include("config.urls")),
]
