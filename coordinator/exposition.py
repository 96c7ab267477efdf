"""The metrics endpoint: the node's registry at GET /metrics over HTTP, in the Prometheus
text format (or OpenMetrics when the scraper asks for it)."""

from __future__ import annotations

import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import choose_encoder

from coordinator.metrics import Registry

log = logging.getLogger(__name__)


class MetricsEndpoint:
    """Serves the registry; its before-scrape calls run on every scrape."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: Registry,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                try:
                    body = registry.scrape(encoder)
                except Exception:
                    log.exception("rendering the metrics failed")
                    self.send_error(500, "rendering the metrics failed")
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # A scrape every few seconds is not worth a log line.
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        if ssl_context is not None:
            # The handshake happens on the first read, in the connection's own thread,
            # so a client that never finishes it cannot stall the accepting thread.
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
