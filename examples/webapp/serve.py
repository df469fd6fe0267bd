"""Serving the app on a fixed pool of threads.

reqmgmt's SQLite store keeps one connection per thread that uses it, so a
server that starts a thread per request (``flask run``, ``app.run(threaded=True)``)
opens a connection per request until the pool is used up.  A fixed pool of
threads, as production WSGI servers have (waitress, gunicorn ``--threads``),
uses a fixed number of connections.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

#: Worker threads (and so at most this many database connections).
THREADS = 4


class _OneRequestPerConnection(WSGIRequestHandler):
    # No keep-alive: a browser's idle connection never holds a worker thread.
    protocol_version = "HTTP/1.0"
    # A client that sends half a request and waits is dropped after this many
    # seconds, so a few idle sockets cannot hold every worker.
    timeout = 10


class PooledServer(BaseWSGIServer):
    """Werkzeug's WSGI server with requests handled by ``threads`` reused threads."""

    def __init__(self, host: str, port: int, app: Any, *, threads: int = THREADS) -> None:
        super().__init__(host, port, app, handler=_OneRequestPerConnection)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="webapp")

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self._handle, request, client_address)

    def _handle(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=True)
