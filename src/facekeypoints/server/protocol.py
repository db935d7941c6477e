"""uvicorn's h11 protocol with a time limit on request headers and a cap on open connections.

What it does and why is told in :mod:`.connections`; ``facekeypoints serve`` runs
uvicorn with :func:`uvicorn_options`.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .connections import GUARD_KEY, ConnectionGuard
from .limits import ServerConfig

#: Largest request head (request line and headers), as h11's default.
MAX_HEAD_BYTES = 16 * 1024
#: Seconds an idle kept-alive connection stays open, as uvicorn's default.
KEEP_ALIVE_S = 5.0


def _raw_answer(status: int, reason: str, code: str, detail: str) -> bytes:
    """A complete HTTP/1.1 answer, for the moments h11 has no request to answer to."""
    body = json.dumps({"error": code, "detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "x-content-type-options: nosniff\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a time limit on request headers and a cap on open connections."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._guard: ConnectionGuard | None = None
        self._head_timer = None
        self._since = 0.0  # when this connection last started waiting on its client
        self._served = False  # it has been answered at least once

    # --- the uvicorn protocol's hooks ---

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        guard = self.app_state.get(GUARD_KEY)
        if not isinstance(guard, ConnectionGuard):
            return
        self._guard = guard
        guard.open += 1
        self._since = self.loop.time()
        if self._make_room():
            self._arm_head_timer()

    def connection_lost(self, exc) -> None:
        self._cancel_head_timer()
        if self._guard is not None:
            self._guard.open -= 1
            self._guard = None
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers have arrived
            self._cancel_head_timer()
            self._since = self.loop.time()

    def on_response_complete(self) -> None:
        if self._guard is not None and not self.transport.is_closing():
            self._since, self._served = self.loop.time(), True
            self._arm_head_timer()  # before uvicorn starts on a pipelined request, which disarms it
        super().on_response_complete()

    # --- the header time limit ---

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self._guard.config.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._working() or self._guard is None:
            return
        if self.conn.trailing_data[0]:  # part of a request's head arrived, not all of it
            self._guard.header_timeouts += 1
            seconds = self._guard.config.header_timeout_s
            detail = f"the request's headers did not arrive within {seconds:g} s"
            self.transport.write(_raw_answer(408, "Request Timeout", "request_timeout", detail))
        self.transport.close()

    # --- the connection cap ---

    def _idle_after_answer(self) -> bool:
        """Kept alive after an answer, with no part of a next request yet: a client that has been served."""
        cycle = self.cycle
        done = cycle is None or cycle.response_complete
        return self._served and done and not self.conn.trailing_data[0]

    def _working(self) -> bool:
        """Whether the server is answering a request of this connection whose body has all arrived."""
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _make_room(self) -> bool:
        """Keep the cap: push out the connection that has waited longest on its client, or refuse this one."""
        guard = self._guard
        others = [
            c for c in self.connections if c is not self and isinstance(c, GuardedH11Protocol) and c._guard is guard
        ]
        others = [c for c in others if not c.transport.is_closing()]
        if len(others) < guard.config.max_connections:
            return True
        guard.warn_full()
        waiting = [c for c in others if not c._working()]
        if waiting:
            # Connections still sending a request go first, oldest first; kept-alive ones that were served, last.
            min(waiting, key=lambda c: (c._idle_after_answer(), c._since))._push_out()
            guard.pushed_out += 1
            return True
        guard.refused += 1
        detail = f"the server has {guard.config.max_connections} connections open, all being answered; retry later"
        self.transport.write(_raw_answer(503, "Service Unavailable", "busy", detail))
        self.transport.close()
        return False

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse, as the API's JSON error instead of plain text."""
        detail = f"the request is not valid HTTP/1.1, or its line and headers are over {MAX_HEAD_BYTES // 1024} KiB"
        body = json.dumps({"error": "bad_request", "detail": detail}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # h11 will not answer in this state: closing says enough
            pass
        self.transport.close()

    def _push_out(self) -> None:
        self._cancel_head_timer()
        self.transport.close()


def uvicorn_options(config: ServerConfig) -> dict:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that put ``config``'s connection limits in force."""
    return {
        "http": GuardedH11Protocol,
        "timeout_keep_alive": min(KEEP_ALIVE_S, config.header_timeout_s),
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "limit_concurrency": None,  # its 503-for-everyone at the cap is what the guard avoids
    }
