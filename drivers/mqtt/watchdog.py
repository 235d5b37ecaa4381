"""The CONNACK watchdog shared by the inbound driver and the publisher.

A port that accepts TCP but does not speak MQTT (an HTTP server, a PLC) never answers the
CONNECT, and paho alone would wait a whole keepalive, silently, before trying again. The
watchdog ends such a socket after `timeout` seconds and turns the disconnect that follows into
one clear reason: "<host>:<port> does not answer MQTT: ...".

Thread use: `socket_opened`, `answered` and `disconnect_reason` are called from paho's network
thread; the timer runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any


class ConnackWatchdog:
    """Watches each new socket until its CONNACK arrives (or `timeout` passes)."""

    def __init__(self, where: str, timeout: float, *,
                 loop: Callable[[], asyncio.AbstractEventLoop | None],
                 closing: Callable[[], bool]) -> None:
        self._where = where
        self._timeout = timeout
        self._loop = loop
        self._closing = closing
        # The socket waiting for its CONNACK (set in paho's thread, read on the loop).
        self._awaiting: Any = None
        self._overdue: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    def socket_opened(self, sock: Any) -> None:
        """paho's on_socket_open: start watching `sock`."""
        self._awaiting, self._overdue = sock, None
        loop = self._loop()
        if loop is not None and not self._closing():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._arm, sock)

    def answered(self) -> None:
        """paho's on_connect: an MQTT answer arrived, even a refusal."""
        self._awaiting = None

    def disconnect_reason(self, reason: str) -> str | None:
        """On a disconnect: the reason to log when the socket never got a CONNACK, else None."""
        if self._awaiting is None:
            return None
        why = self._overdue or f"the connection was closed ({reason})"
        self._awaiting = None
        return f"{self._where} does not answer MQTT: {why}"

    def cancel(self) -> None:
        """Stop the timer (on close; call on the event loop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, sock: Any) -> None:
        self.cancel()
        loop = self._loop()
        if self._closing() or loop is None:
            return
        self._timer = loop.call_later(self._timeout, self._expired, sock)

    def _expired(self, sock: Any) -> None:
        """No CONNACK in time: end this socket (paho reconnects with its growing delay)."""
        self._timer = None
        if self._awaiting is not sock:
            return
        self._overdue = f"no CONNACK within {self._timeout:g}s"
        # shutdown, not close: paho's thread owns the descriptor; it sees the end of the
        # stream, reports a disconnect and schedules the next attempt.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
