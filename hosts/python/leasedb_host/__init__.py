"""Embeds the leasedb storage engine (a WebAssembly component) in a Python
server: `Plugin` runs it with wasmtime over a `Backend` such as
`DirectoryBackend` (Tahoe's disk layout)."""

from .backend import Backend, BackendError, DirectoryBackend, ListPage, ObjectEntry
from .errors import (
    CallError,
    DeadlineExceeded,
    InstanceDied,
    MemoryExhausted,
    PluginError,
    Trapped,
    Unavailable,
)
from .host import EXPORTS, INTERFACE_VERSION, Plugin, crawler_config, record

__all__ = [
    "Backend", "BackendError", "DirectoryBackend", "ListPage", "ObjectEntry",
    "CallError", "DeadlineExceeded", "InstanceDied", "MemoryExhausted", "PluginError",
    "Trapped", "Unavailable", "EXPORTS", "INTERFACE_VERSION", "Plugin", "crawler_config", "record",
]
