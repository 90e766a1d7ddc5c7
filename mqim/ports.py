"""Checking that listen addresses are free before anything starts, for a clear message."""

from __future__ import annotations

import errno
import socket

from broker.errors import PortInUseError
from config import HostPort


def ensure_free(address: HostPort, what: str, setting: str = "") -> None:
    """Raise PortInUseError if nothing could listen on `address` right now."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same option the servers use, so a port in TIME_WAIT is not reported as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address.host, address.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(what, str(address), setting) from exc
            raise
