"""The executor's default tools per task domain (placeholder until the tools package lands)."""

from __future__ import annotations

from typing import Any


def default_tool_names(domain: str | None) -> list[str]:
    """Names of the default tools for ``domain``."""
    return [getattr(t, "name", str(t)) for t in default_tools(domain, None)]


def default_tools(domain: str | None, search: dict[str, Any] | None) -> list[Any]:
    """Default tools for ``domain`` ("search", "coding", or anything else)."""
    return []
