"""Connections under uvicorn: a time limit on a request's headers and a cap on open connections.

uvicorn bounds the size of a request's headers (h11's 16 KiB) and the idle time
between two requests on a kept-alive connection (``timeout_keep_alive``), but
not the time a client may take to send its headers, nor the number of open
connections in a way that slow clients cannot use up: its ``limit_concurrency``
answers 503 to every new request once the cap is reached, so a hundred
trickling clients would lock everyone else out. :class:`~.protocol.GuardedH11Protocol`
adds both:

- **header time limit**: the request line and headers must arrive within
  ``header_timeout_s`` of the connection's start (or of the previous answer on a
  kept-alive connection); past it the connection is answered 408 and closed.
  The body's time limit is the gateway's (:mod:`.gateway`, ``body_timeout_s``).
- **connection cap**: at most ``max_connections`` open connections. A new
  connection past the cap pushes out the open one that has waited longest on
  its client while still sending a request (its headers or its body); a
  kept-alive connection idle after an answer goes only when there is no such
  one. A connection whose request is being answered is never pushed out; when
  all of them are, the new one is answered 503 and closed. A slow client
  therefore holds a place only until someone else needs it, and ordinary
  requests, which take milliseconds to send, get in. (Against more slow clients
  than the cap that reconnect as fast as they are pushed out, from one address,
  nothing at this level helps: that is a firewall's or a proxy's job.)

This module holds what the connections of one server share (:class:`ConnectionGuard`:
settings and counters, shown by ``/healthz``) and needs no web server;
:mod:`.protocol` holds the uvicorn protocol. The protocol finds the guard in the
app's lifespan state (``create_app`` puts it there), so a ``facekeypoints`` app
run under another server or protocol keeps every other limit and only loses these two.
"""

from __future__ import annotations

import logging
import time

from .limits import ServerConfig

log = logging.getLogger("facekeypoints.server")

#: The lifespan state key under which ``create_app`` hands its :class:`ConnectionGuard` to the protocol.
GUARD_KEY = "facekeypoints.connections"
_WARN_EVERY_S = 60.0


class ConnectionGuard:
    """The settings and counters shared by the connections of one server process."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.header_timeouts = 0  #: connections closed for sending their headers too slowly
        self.body_timeouts = 0  #: requests answered 408 for sending their body too slowly (counted by the gateway)
        self.pushed_out = 0  #: connections closed to make room for a new one
        self.refused = 0  #: new connections answered 503 because every open one was being answered
        self.open = 0  #: connections open now
        self._warned = -_WARN_EVERY_S

    def counters(self) -> dict[str, int]:
        return {
            "open": self.open,
            "max": self.config.max_connections,
            "header_timeouts": self.header_timeouts,
            "body_timeouts": self.body_timeouts,
            "pushed_out": self.pushed_out,
            "refused": self.refused,
        }

    def warn_full(self) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY_S:  # at most one line a minute, whatever the flood
            self._warned = now
            log.warning(
                "%d connections open, the --max-connections cap: the slowest are closed to make room "
                "(see /healthz 'connections')",
                self.config.max_connections,
            )
