"""Errors of the broker package (never HTTP errors).

    BrokerError
    ├── PortInUseError     a listener's address is taken
    └── BrokerUnavailableError   the broker cannot be reached
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of the broker package's errors."""


class PortInUseError(BrokerError):
    def __init__(self, what: str, address: str) -> None:
        super().__init__(
            f"cannot listen for {what} on {address}: the port is in use "
            "(stop the other process or choose another address)"
        )
        self.what = what
        self.address = address


class BrokerUnavailableError(BrokerError):
    """The MQTT broker refused or dropped the connection."""
