"""``serve``: the app under waitress until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable

from flask import Flask

from publisher.errors import PublisherError

from .app import MAX_REQUEST_BYTES


class ServeError(PublisherError):
    """The server cannot start (the address is in use, the port needs privileges)."""


def serve(app: Flask, *, host: str, port: int, on_ready: Callable[[str], None], threads: int = 8) -> None:
    """Run ``app`` under waitress until Ctrl-C or SIGTERM; queued
    confirmation emails are sent before it returns.

    ``on_ready`` gets the URL once the socket listens. No ``Server`` header
    is sent, and waitress leaves X-Forwarded-For alone: ``client_ip``
    reads it, believing only ``[serve] trusted_proxies``.
    """
    from waitress import create_server

    try:
        server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="",
            clear_untrusted_proxy_headers=False,
            max_request_body_size=MAX_REQUEST_BYTES * 4,
            expose_tracebacks=False,
        )
    except OSError as exc:
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another server using it? choose another with --port or [serve] port)"
        ) from exc

    def stop(_signum, _frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        shown_host = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown_host}:{server.effective_port}/")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
        mailer = app.extensions.get("publisher.mailer")
        if mailer is not None:
            mailer.close()
