"""Errors of the broker package (never HTTP errors).

    BrokerError
    ├── PortInUseError     a listener's address is taken
    └── BrokerUnavailableError   the broker cannot be reached
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of the broker package's errors."""


class PortInUseError(BrokerError):
    def __init__(self, what: str, address: str, setting: str = "") -> None:
        hint = f", e.g. with {setting}" if setting else ""
        super().__init__(
            f"cannot listen for {what} on {address}: the port is in use "
            f"(stop the other process or choose another address{hint})"
        )
        self.what = what
        self.address = address


class BrokerUnavailableError(BrokerError):
    """The MQTT broker refused or dropped the connection."""
