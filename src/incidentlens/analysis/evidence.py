"""Evidence: the currency between layers.

Every analysis function returns evidence: a compact, JSON-serialisable record with a stable id, a kind, a
human title, the query (SQL, or a description of the computation) that produced it, and its data. Reports cite
evidence ids; a reader can re-run the query.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field


class Evidence(BaseModel):
    id: str
    kind: str
    title: str
    query: str
    data: Any = Field(default=None)

    @classmethod
    def make(cls, kind: str, title: str, query: str, data: Any) -> Evidence:
        """Build evidence with a content-derived id, so the same finding always gets the same id."""
        payload = json.dumps([kind, query, data], sort_keys=True, default=str)
        digest = hashlib.sha1(payload.encode()).hexdigest()[:8]
        return cls(id=f"{kind}-{digest}", kind=kind, title=title, query=query, data=data)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
