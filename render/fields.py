"""Option fields whose metadata (kind, doc, limits) drives validation, the JSON schema and the docs."""

from __future__ import annotations

from dataclasses import field
from typing import Any


def option(default: Any, kind: str, doc: str, **rules: Any) -> Any:
    return field(default=default, metadata={"kind": kind, "doc": doc, **rules})
