"""A webhook receiver for tests: stdlib http.server on 127.0.0.1 in a thread, keeping
every POST; paths starting with /fail answer 500."""

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Received(list):
    """(path, content type, JSON document) of each POST, in arrival order."""

    def events(self, path: str) -> list[str]:
        return [doc["event"] for got, _, doc in self if got == path]


@contextlib.contextmanager
def webhook() -> Iterator[tuple[str, Received]]:
    """Yields the server's base URL and what it received."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], json.loads(body)))
            self.send_response(500 if self.path.startswith("/fail") else 204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
