"""The real URLs plus a trivial endpoint on an API built like the real one (key auth, per-key
limit, envelope): the reference ``bench/api.py`` measures the REST list endpoint against."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import path

from config.api import create_api
from config.urls import urlpatterns as actiondesk

reference = create_api(urls_namespace="bench", docs_url=None, openapi_url=None)


@reference.get("/ping")
def ping(request: HttpRequest) -> dict[str, bool]:
    return {"ok": True}


urlpatterns = [path("bench/api/", reference.urls), *actiondesk]
