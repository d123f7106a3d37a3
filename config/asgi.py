"""ASGI entry point: HTTP through Django, WebSockets through Channels behind the origin check and
session authentication. Refuses to start when a system check of ours reports an error."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.checks import raise_on_startup_errors  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from sites.sockets import SiteOriginValidator  # noqa: E402

raise_on_startup_errors()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Our own hosts for every socket; a site's origins for that site's conversations.
        "websocket": SiteOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
