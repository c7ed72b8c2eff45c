"""Fake HTTP services for tests: a handler served on a free loopback port in a thread,
its record of requests and its scripted answers."""

import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve `handler` until the block ends; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class JsonRequest:
    """A POST with a JSON body, as the fake service received it."""

    path: str
    body: dict[str, Any]


class ScriptedService[R, A]:
    """A fake service's record of the requests it got, and its queue of scripted
    answers (`default()` once the queue is empty). Handlers run in server threads."""

    def __init__(self, default: Callable[[], A]) -> None:
        self.port = 0
        self.received: list[R] = []
        self.answers: list[A] = []
        self.lock = threading.Lock()
        self._default = default

    def answer(self, *answers: A) -> None:
        self.answers.extend(answers)

    def next_answer(self, request: R) -> A:
        """Record `request` and take the answer for it."""
        with self.lock:
            self.received.append(request)
            return self.answers.pop(0) if self.answers else self._default()


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def read_json(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def send_body(self, status: int, data: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Answer `status` with `data` (JSON unless the headers say otherwise)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), headers)

    def drop_connection(self) -> None:
        """End the exchange with a TCP reset and no answer, as a lost connection does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


@contextmanager
def served[S: ScriptedService[Any, Any]](fake: S, handler: type[BaseHTTPRequestHandler]) -> Iterator[S]:
    """Serve `handler` for `fake` until the block ends, with `fake.port` set."""
    with serving(handler) as port:
        fake.port = port
        yield fake
