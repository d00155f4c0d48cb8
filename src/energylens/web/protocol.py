"""uvicorn's HTTP/1.1 protocol with a deadline on request headers (uvicorn has none: a client that sends
half a request line and then nothing holds its connection for ever, and a few hundred such clients hold
the server). Bodies have their own deadline (app.Guard)."""
from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0  # to send a request line and its headers


class HeaderTimeoutProtocol(H11Protocol):
    """Closes a connection whose client has not sent a whole request head within HEADER_TIMEOUT_S of
    connecting, or of the previous response (keep-alive)."""

    header_timeout_s = HEADER_TIMEOUT_S

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_overdue)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._cancel_deadline()
        if not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_overdue)

    def connection_lost(self, exc) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        deadline = getattr(self, "_head_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._head_deadline = None

    def _head_overdue(self) -> None:
        self._head_deadline = None
        # IDLE: the client's request head is not complete (h11 leaves IDLE once it has the whole head)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
