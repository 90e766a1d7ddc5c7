"""HTTP routes, one module per noun: parse -> call the models -> serialise.

Path parameters use two convertors registered here, before any route is built: `{x:id}` takes
only what an id can be and `{x:num}` only numbers that fit a BIGINT column, so an overlong id or
a 30-digit number is a 404 of the router, never a database error.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

from contract.fields import ID_PATTERN


class IdConvertor(Convertor[str]):
    regex = ID_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class NumConvertor(Convertor[int]):
    regex = "[0-9]{1,18}"  # below 2**63 whatever the digits

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())
register_url_convertor("num", NumConvertor())
