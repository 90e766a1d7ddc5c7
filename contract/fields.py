"""Field types shared by uplink commands and HTTP bodies: ids and client-chosen keys are refused
while parsing (1001) when they could not be an id, before they reach a query or a topic.

Ids are letters, digits, '_', '-', '.' only: never '/', '+', '#', whitespace or NUL (so they are
safe in an MQTT topic level), nor '@' (an id must not look like someone's email: login takes
either), at most 64 characters.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StrictStr, StringConstraints

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
IdField = Annotated[StrictStr, StringConstraints(pattern=f"^(?:{ID_PATTERN})$")]
# Chosen by clients: any text of 1-64 characters but control characters (C0, DEL, C1).
CLIENT_MSG_ID_MAX = 64
ClientMsgIdField = Annotated[
    StrictStr, StringConstraints(pattern=rf"^[^\x00-\x1f\x7f-\x9f]{{1,{CLIENT_MSG_ID_MAX}}}$")
]
# Seqs and numeric ids are BIGINT columns: anything larger is a bad parameter, not a DB error.
INT_MAX = 2**63 - 1
