"""A loopback HTTP server whose answers stop short of their ``Content-Length``, then hang up.

This is what a proxy or load balancer does when the vendor's backend dies mid-answer; ``requests``
raises ``ChunkedEncodingError`` (not a ``ConnectionError``) for it. Used by the BambooHR and
Workday client tests.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class CutOffServer:
    """Answers every request with ``status`` and the first bytes of a longer JSON body.

    With ``hang_up`` it reads the whole request and closes without answering at all (the
    request was delivered; only the answer is lost).
    """

    def __init__(
        self,
        status: int = 200,
        body: bytes = b'{"employees": [{"id": "1", "fir',
        *,
        hang_up: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.hang_up = hang_up
        self.requests: list[str] = []  # "METHOD /path" per request received
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> CutOffServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in lines
                if line.lower().startswith("content-length:")
            ),
            0,
        )
        while len(rest) < length:  # read the whole request so the close is not a reset
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        self.requests.append(" ".join(lines[0].split(" ")[:2]))
        if self.hang_up:
            return
        promised = len(self.body) + 1000
        conn.sendall(
            f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {promised}\r\nConnection: close\r\n\r\n".encode()
            + self.body
        )
        conn.shutdown(socket.SHUT_WR)
