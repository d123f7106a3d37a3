"""``python -m config.server [Daphne's options] config.asgi:application``: Daphne's command line
with its access log written through ``logging`` (logger ``daphne.access``) instead of raw to
stdout, so access lines get the same redaction and PII masking as every other line
(``config.logging``: an ``?api_key=`` in a URL is never printed) and the ``LOG_FORMAT``
rendering. The Makefile's ``run`` and the Dockerfile start the server this way."""

from __future__ import annotations

import datetime
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


def main(argv: list[str] | None = None) -> None:
    # Imported here: importing daphne.server installs Twisted's reactor.
    from daphne.cli import CommandLineInterface
    from daphne.server import Server

    class LoggingServer(Server):
        def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
            # Daphne passes its stdout logger when access logging is on (verbosity >= 1 or
            # --access-log); keep that choice, change only where the lines go.
            logger = AccessLog() if action_logger is not None else None
            super().__init__(*args, action_logger=logger, **kwargs)

    class LoggingCommandLine(CommandLineInterface):
        server_class = LoggingServer

    LoggingCommandLine().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
