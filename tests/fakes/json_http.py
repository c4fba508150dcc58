"""Serve a stateful fake as JSON over HTTP on an ephemeral loopback port.

The Argo Server, Kubernetes API and other stand-ins each decide what to answer; this module
does the HTTP part once: read the body, call the fake, write its answer as JSON.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: ``(method, path, headers, body) -> (status, JSON payload)``
Answer = Callable[[str, str, Any, bytes], tuple[int, Any]]


@contextmanager
def serve_json(answer: Answer, *, http11: bool = False, tls: Any = None) -> Iterator[str]:
    """Serve ``answer`` on ``http://127.0.0.1:<port>`` for the ``with`` block; yields the URL.
    With ``tls`` (an ``ssl.SSLContext`` holding a certificate) it serves ``https://``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if http11 else "HTTP/1.0"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = answer(self.command, self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
