"""``python -m config.server [Daphne's options] config.asgi:application``: Daphne's command line
with its access log written through ``logging`` (logger ``daphne.access``) instead of raw to
stdout, so access lines get the same redaction and PII masking as every other line
(``config.logging``: an ``?api_key=`` in a URL is never printed) and the ``LOG_FORMAT``
rendering. The Makefile's ``run`` and the Dockerfile start the server this way.

It also fills Twisted's reason-phrase table from ``http.HTTPStatus`` (Twisted has no 422 or 429
and answered "Unknown Status"), and closes a WebSocket whose frame or message passes
``--websocket-max-message-size``/``--websocket-max-frame-size`` with 1009 instead of dropping
the TCP connection (autobahn's ``failByDrop``), logging every refusal at warning with its code."""

from __future__ import annotations

import datetime
import http
import sys
from typing import Any

import structlog
from daphne.access import AccessLogGenerator

access_logger = structlog.get_logger("daphne.access")


class AccessLog(AccessLogGenerator):
    """Daphne's access entries (HTTP requests, WebSocket connects and disconnects) as log
    events; ``request`` is Daphne's ``"GET /path?query"``, redacted and masked downstream."""

    def __init__(self) -> None:
        super().__init__(stream=None)

    def write_entry(
        self,
        host: str,
        date: datetime.datetime,
        request: str,
        status: int | None = None,
        length: int | None = None,
        ident: str | None = None,
        user: str | None = None,
    ) -> None:
        access_logger.info(
            "access_logged", client=host, request=request, status=status, size=length
        )


ws_logger = structlog.get_logger("daphne.ws_protocol")


def fill_reason_phrases() -> None:
    """Give Twisted the standard phrase of every status it lacks (429 Too Many Requests, 422
    Unprocessable Content, ...); ``setResponseCode`` reads this table."""
    from twisted.web import http as twisted_http

    for status in http.HTTPStatus:
        twisted_http.RESPONSES.setdefault(status.value, status.phrase.encode("ascii"))


def refusing_protocol() -> type:
    """Daphne's WebSocket protocol, logging every connection autobahn fails (oversized frame
    1009, protocol error 1002, bad UTF-8 1007) at warning with the close code it sent."""
    from daphne.ws_protocol import WebSocketProtocol

    class RefusingWebSocketProtocol(WebSocketProtocol):
        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            if getattr(self, "failedByMe", False):
                ws_logger.warning(
                    "websocket_frame_refused",
                    code=self.localCloseCode,
                    reason=self.localCloseReason,
                    path=getattr(getattr(self, "request", None), "path", None),
                    client=getattr(self, "client_addr", None),
                )
            super().onClose(wasClean, code, reason)

    return RefusingWebSocketProtocol


def main(argv: list[str] | None = None) -> None:
    # Imported here: importing daphne.server installs Twisted's reactor.
    from daphne.cli import CommandLineInterface
    from daphne.server import Server

    fill_reason_phrases()
    protocol = refusing_protocol()

    class LoggingServer(Server):
        def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
            # Daphne passes its stdout logger when access logging is on (verbosity >= 1 or
            # --access-log); keep that choice, change only where the lines go.
            logger = AccessLog() if action_logger is not None else None
            super().__init__(*args, action_logger=logger, **kwargs)

        # Server.run() builds the factory and starts the reactor in one call; catching the
        # assignment is the one place to adjust the factory before it accepts connections.
        @property
        def ws_factory(self) -> Any:
            return self._ws_factory

        @ws_factory.setter
        def ws_factory(self, factory: Any) -> None:
            factory.protocol = protocol
            # Close with 1009 (and the closing handshake) rather than drop the TCP connection.
            factory.setProtocolOptions(failByDrop=False)
            self._ws_factory = factory

    class LoggingCommandLine(CommandLineInterface):
        server_class = LoggingServer

    LoggingCommandLine().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
