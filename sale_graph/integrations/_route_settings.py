"""Settings of a route-only auction: a :class:`SaleContext` from keywords, unknown keys refused by name."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any

from sale_graph.context import SaleContext
from sale_graph.errors import ContextError, unknown_keys_message
from sale_graph.pool import AgentPool

#: The settings a :class:`SaleContext` takes, in declaration order.
CONTEXT_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SaleContext))

PoolSpec = AgentPool | str | os.PathLike[str] | None


def check_context_keys(keys: Iterable[str], where: str = "context") -> None:
    """Raise :class:`ContextError` when ``keys`` holds a name that is not a :class:`SaleContext` field.

    Args:
        keys: the setting names given.
        where: what held them, for the message.

    Raises:
        ContextError: naming each unknown key, its closest allowed key, and all allowed keys.
    """
    unknown = set(keys) - set(CONTEXT_KEYS)
    if unknown:
        raise ContextError(unknown_keys_message(unknown, CONTEXT_KEYS, where))


def as_context(value: SaleContext | Mapping[str, Any] | None, where: str = "context") -> SaleContext:
    """A :class:`SaleContext` from a context, a dict of its fields (checked by name) or ``None`` (defaults)."""
    if value is None:
        return SaleContext()
    if isinstance(value, SaleContext):
        return value
    if isinstance(value, Mapping):
        check_context_keys(value, where)
        return SaleContext(**dict(value))
    raise ContextError(f"{where} must be a SaleContext or a dict of its fields, got {type(value).__name__}")


def route_context(
    base: SaleContext | Mapping[str, Any] | None,
    pool: PoolSpec | Any,
    settings: Mapping[str, Any],
    where: str,
) -> SaleContext:
    """The settings of a route-only auction: ``base`` with ``pool`` and ``settings`` over it, ``route_only=True``.

    Args:
        base: a :class:`SaleContext`, a dict of its fields, or ``None`` for the defaults.
        pool: an :class:`AgentPool`, a path to a pool TOML, ``None`` for the embedded pool, or
            :data:`KEEP` to keep the base's pool.
        settings: more :class:`SaleContext` fields by keyword (``weights``, ``use_memory``...).
        where: who was given the settings, for error messages.

    Returns:
        The context, always with ``route_only=True``.

    Raises:
        ContextError: a setting is not a :class:`SaleContext` field.
        ValueError: a setting has a bad value (from :class:`SaleContext`).
    """
    check_context_keys(settings, where)
    over = dict(settings)
    if pool is not KEEP:
        over["pool"] = os.fspath(pool) if isinstance(pool, os.PathLike) else pool
    return dataclasses.replace(as_context(base, where), **over, route_only=True)


#: Settings of the winner's execution. A router's auction never executes (the app's node
#: does, or the gateway's client), so there they would be silently ignored: refused instead.
EXECUTION_KEYS: tuple[str, ...] = (
    "execute_max_steps", "execute_max_tokens", "execute_step_max_tokens", "execute_wall_time_s", "search", "search_first",
)


def refuse_settings(ctx: SaleContext, keys: Iterable[str], where: str, why: str) -> None:
    """Raise :class:`ContextError` when ``ctx`` sets any of ``keys`` away from its default.

    Args:
        ctx: the settings to check.
        keys: settings that have no effect for this caller.
        where: who was given the settings, for the message.
        why: what the caller does instead, for the message.

    Raises:
        ContextError: naming each such setting and ``why``.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(SaleContext)}
    given = [k for k in keys if getattr(ctx, k) != defaults[k]]
    if given:
        names = ", ".join(repr(k) for k in given)
        verb, it = ("has", "it") if len(given) == 1 else ("have", "them")
        raise ContextError(f"{where} {names} {verb} no effect: {why}; leave {it} out")


class _Keep:
    """Marker: keep the pool the base context names."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


__all__ = [
    "CONTEXT_KEYS", "EXECUTION_KEYS", "KEEP", "PoolSpec", "as_context", "check_context_keys", "refuse_settings", "route_context",
    "unknown_keys_message",
]
