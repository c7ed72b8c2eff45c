from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns


def hello(request: HttpRequest) -> HttpResponse:
    """The ceiling: a Django view that does nothing, through the same middleware stack."""
    return HttpResponse("hello")


# The app's own patterns at the root, as config.urls serves them: an include() here
# would add a resolver level, and its cost, to every app request but not to hello.
urlpatterns = [
    path("bench/hello/", hello),
    *app_urlpatterns,
]
