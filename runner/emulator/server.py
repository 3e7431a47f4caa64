"""HTTP/1.1 servers on loopback for the Graph host and the HTTPS token host.

Threads from the standard library's `ThreadingHTTPServer`, keep-alive, `Content-Length` and
chunked request bodies. The server also carries out what a fault asks of the connection:
reset it before answering, close it after the change was applied, drip the body.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runner.emulator.config import Latency
from runner.emulator.wire import ConnectionFault, Request, Response

RequestHandler = Callable[[Request], Response]
RequestFactory = Callable[[str, str, dict[str, str], bytes], Request]

MAX_BODY = 16 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer
    server_version = "EntraBulkEmulator/1.0"
    sys_version = ""
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK holds
    # the body back ~40 ms per response (measured: 45 ms -> 0.7 ms per request on loopback).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator keeps its own request log."""

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in {b"\r\n", b"\n", b""}:
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self._write(Response(status=413, body=b""))
            return
        headers = {name: value for name, value in self.headers.items()}
        request = self.server.make_request(self.command, self.path, headers, body)
        response = self.server.handler(request)
        delay = self.server.latency_s(request)
        if delay > 0:
            time.sleep(delay)
        self._write(response)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def _abort(self, *, reset: bool) -> None:
        self.close_connection = True
        if reset:
            with contextlib.suppress(OSError):  # a reset (RST) rather than an orderly close
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
        with contextlib.suppress(OSError):
            self.connection.close()

    def _write(self, response: Response) -> None:
        if response.fault in {ConnectionFault.RESET_BEFORE, ConnectionFault.DROP_AFTER}:
            self._abort(reset=True)
            return
        body = response.body
        self.send_response_only(response.status)
        for name, value in response.headers.items():
            if name.lower() not in {"content-length", "date", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Date", email.utils.formatdate(usegmt=True))
        self.end_headers()
        try:
            if response.fault is ConnectionFault.DRIP:
                self.wfile.flush()
                for index in range(len(body)):
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(response.drip_delay_s)
            else:
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True


class EmulatorHTTPServer(ThreadingHTTPServer):
    """One listening socket, a thread per connection, optional TLS."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        handler: RequestHandler,
        make_request: RequestFactory,
        latency: Latency | None = None,
        latency_seed: int = 0,
        tls: ssl.SSLContext | None = None,
        latency_paths: Callable[[Request], bool] | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.handler = handler
        self.make_request = make_request
        self.latency = latency or Latency()
        self._latency_rng = random.Random(latency_seed)
        self._latency_lock = threading.Lock()
        self._latency_paths = latency_paths
        self._tls = tls
        self._thread: threading.Thread | None = None

    def latency_s(self, request: Request) -> float:
        """Seconds to wait before answering this request."""
        if not self.latency.enabled:
            return 0.0
        if self._latency_paths is not None and not self._latency_paths(request):
            return 0.0
        with self._latency_lock:
            millis = self._latency_rng.uniform(self.latency.low_ms, self.latency.high_ms)
        return millis / 1000.0

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Run the TLS handshake in the connection's own thread, then serve it."""
        if self._tls is not None:
            try:
                request = self._tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a background daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
