"""SignupEntry: one accepted sign-up as the intake stream carries it, from the request
(request.py) to its record (record.py)."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# One encoder for every entry: json.dumps() with separators builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class SignupEntry:
    """One accepted sign-up on its way from the request to its record: ids and the
    validated values, as the intake stream carries it (JSON)."""

    form_id: int
    privacy_notice_id: int | None
    email: str
    first_name: str
    topic_ids: list[int]
    attributes: dict[str, Any]
    source: str
    requested_at: datetime

    def dumps(self) -> str:
        values = {**self.__dict__, "requested_at": self.requested_at.isoformat()}
        return _COMPACT_JSON.encode(values)

    @classmethod
    def loads(cls, payload: str) -> "SignupEntry":
        values = json.loads(payload)
        values["requested_at"] = datetime.fromisoformat(values["requested_at"])
        return cls(**values)
