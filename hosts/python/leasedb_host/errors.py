"""Exceptions a call to the plugin raises."""

from __future__ import annotations

from typing import Any, Optional


class CallError(Exception):
    """A plugin call failed."""


class PluginError(CallError):
    """The plugin answered with its WIT `error` (or the function's error type).

    `tag` is the error case (`bad-input`, `not-found`, ...), `payload` its
    value as wasmtime gives it, `value` the whole `Variant`.
    """

    def __init__(self, value: Any) -> None:
        self.value = value
        self.tag: str = getattr(value, "tag", str(value))
        self.payload: Optional[Any] = getattr(value, "payload", None)
        super().__init__(f"{self.tag}: {self.payload!r}" if self.payload is not None else self.tag)


class InstanceDied(CallError):
    """The instance died in this call; the next call is served by a fresh one
    (cold start on the same state)."""


class Trapped(InstanceDied):
    """The instance trapped (a plugin bug, or the backend raised something
    that is not a `BackendError`)."""


class DeadlineExceeded(InstanceDied):
    """The call ran past its deadline and was interrupted."""


class MemoryExhausted(InstanceDied):
    """The instance reached its memory cap."""


class Unavailable(CallError):
    """No instance could be started."""
