"""Runs the leasedb component with wasmtime (the `wasmtime` package from
PyPI) for a Python server: one instance, calls in series under a lock, the
backend supplied by the caller, the sandbox limited to one directory.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple, Union

import wasmtime
from wasmtime import component as wc

from .backend import MAX_LIST_LIMIT, Backend, BackendError
from .errors import (
    DeadlineExceeded,
    MemoryExhausted,
    PluginError,
    Trapped,
    Unavailable,
)

#: The interface version this host runs.
INTERFACE_VERSION = "0.2.0"
BACKEND = f"leasedb:plugin/backend@{INTERFACE_VERSION}"
#: Where the plugin's private directory appears inside the sandbox.
GUEST_STATE_DIR = "/state"
#: Most bytes one backend read returns (what the guest can make us allocate).
MAX_READ_LENGTH = 64 << 20

DEFAULT_CHUNK_SIZE = 512 << 10
DEFAULT_LEASE_DURATION = 31 * 86_400
DEFAULT_MAX_SIZE = 64 << 30
DEFAULT_MEMORY_CAP = 256 << 20
DEFAULT_CALL_DEADLINE = 10.0
#: Seconds starting an instance may run: a cold start's recovery grows with
#: the store, not with one request.
DEFAULT_INIT_DEADLINE = 300.0
DEFAULT_CRAWLER = {"policy": "disabled", "history-limit": 10, "min-cycle-seconds": 12 * 3600}

#: The handover that asks a fresh instance to take over the uploads in flight
#: its dead predecessor staged in the state directory (EMBEDDING.md).
RESUME_HANDOVER = b"\x01"

#: How often the deadline clock ticks.
EPOCH_TICK = 0.01

#: Every export: call name -> (interface, WIT function name). Two interfaces
#: export `read` and `configure`-like names, hence the prefixed call names.
EXPORTS: Dict[str, Tuple[str, str]] = {}
for _iface, _names in {
    "storage": ["allocate", "write", "close", "abort", "list-shares", "read", "add-lease",
                "list-leases", "list-all-shares"],
    "mutable": ["read-test-write", ("mutable-read", "read")],
    "accounting": ["get-capabilities", "advise-corrupt", "list-advisories", "get-usage",
                   "usage-by-account", "get-stats"],
    "crawler": [("crawler-configure", "configure"), ("crawler-run-slice", "run-slice"),
                ("crawler-status", "status")],
    "lifecycle": ["init", "handover", "info", "schema-version", "begin-batch", "commit-batch",
                  "session-opened", "session-closed", "shutdown"],
}.items():
    for _n in _names:
        _call, _wit = _n if isinstance(_n, tuple) else (_n, _n)
        EXPORTS[_call] = (f"leasedb:plugin/{_iface}@{INTERFACE_VERSION}", _wit)


def record(**fields: Any) -> wc.Record:
    """A WIT record; keyword names use `_` where WIT uses `-`."""
    r = wc.Record()
    for name, value in fields.items():
        setattr(r, name.replace("_", "-"), value)
    return r


def classes(ty: Any) -> set:
    """The Python classes wasmtime uses for values of `ty`."""
    found: set = set()
    if ty is None:
        found.add(object)
    else:
        ty.add_classes(found)
    return found


def split_result(ty: wc.ResultType, value: Any) -> Tuple[bool, Any]:
    """(is-ok, payload) of a `result` value as wasmtime returns it: a
    `Variant` tagged ok/err when the two cases' values could be confused,
    else the bare payload."""
    ok_classes, err_classes = classes(ty.ok), classes(ty.err)
    if ok_classes & err_classes:
        return value.tag == "ok", value.payload
    # Test the case without a catch-all first (`object` stands for "no payload").
    for is_ok, cls, payload_ty in sorted(
        ((True, ok_classes, ty.ok), (False, err_classes, ty.err)), key=lambda c: object in c[1]
    ):
        if payload_ty is None:
            if value is None:
                return is_ok, None
        elif isinstance(value, tuple(cls)):
            return is_ok, value
    raise TypeError(f"{value!r} is neither case of the result")


class Plugin:
    """One running plugin. Calls are serialised by a lock; if the instance
    dies in a call (trap, deadline, memory cap) that call raises and the next
    one is served by a fresh instance on the same state.

    `state_dir` holds the plugin's private directory (`plugin/`, seen as
    `/state`) and the node id. `crawler` is a `crawler-config` record or a
    dict for `crawler_config`. `clock`, if given, is the wall clock the plugin
    sees (a function returning Unix seconds); by default the system's. An
    `engine` passed in must have epoch interruption enabled (the deadline);
    compiled code is cached in `cache_dir` (default `<state_dir>/cache`).
    """

    def __init__(
        self,
        component: Union[str, wc.Component],
        state_dir: str,
        backend: Backend,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        lease_duration: int = DEFAULT_LEASE_DURATION,
        max_immutable_size: int = DEFAULT_MAX_SIZE,
        max_mutable_size: int = DEFAULT_MAX_SIZE,
        node_id: Optional[bytes] = None,
        crawler: Optional[Dict[str, Any]] = None,
        memory_cap: int = DEFAULT_MEMORY_CAP,
        call_deadline: float = DEFAULT_CALL_DEADLINE,
        init_deadline: float = DEFAULT_INIT_DEADLINE,
        clock: Optional[Callable[[], float]] = None,
        engine: Optional[wasmtime.Engine] = None,
        cache_dir: Optional[str] = None,
        stderr: Callable[[bytes], None] = sys.stderr.buffer.write,
    ) -> None:
        self.backend = backend
        self.state_dir = os.path.abspath(state_dir)
        self.plugin_dir = os.path.join(self.state_dir, "plugin")
        os.makedirs(self.plugin_dir, exist_ok=True)
        self.memory_cap = memory_cap
        self.call_deadline = call_deadline
        self.init_deadline = max(init_deadline, call_deadline)
        self.clock = clock
        self._stderr = stderr
        self._recent_stderr = b""
        self._lock = threading.RLock()
        self._config = record(
            chunk_size=chunk_size,
            lease_duration=lease_duration,
            max_immutable_size=max_immutable_size,
            max_mutable_size=max_mutable_size,
            node_id=node_id if node_id is not None else _load_or_create_node_id(self.state_dir),
        )
        self._crawler = crawler if isinstance(crawler, wc.Record) else crawler_config(crawler or DEFAULT_CRAWLER)
        if engine is None:
            config = wasmtime.Config()
            config.epoch_interruption = True
            engine = wasmtime.Engine(config)
        self.engine = engine
        if isinstance(component, wc.Component):
            self.component = component
        else:
            self.component = load_component(engine, component, cache_dir or os.path.join(self.state_dir, "cache"))
        self.imports = list(self.component.type.imports(engine).keys())
        self._linker = self._link()
        self._ticker = _Ticker(engine)
        self._store: Optional[wasmtime.Store] = None
        self._instance: Optional[wc.Instance] = None
        self._funcs: Dict[str, wc.Func] = {}
        self.init_report: Any = None
        self._deaths_in_a_row = 0
        self.restarts = 0
        self._launch()

    # -- linking ----------------------------------------------------------

    def _link(self) -> wc.Linker:
        linker = wc.Linker(self.engine)
        linker.add_wasip2()
        backend = self.backend
        with linker.root() as root:
            with root.add_instance(BACKEND) as b:
                b.add_func("list-objects", _backend_call(
                    lambda prefix, after, limit: _page(backend.list_objects(prefix, after, min(limit, MAX_LIST_LIMIT)))))
                b.add_func("read", _backend_call(lambda key, offset, length: _bounded_read(backend, key, offset, length)))
                b.add_func("write", _backend_call(lambda key, data: backend.write(key, bytes(data))))
                b.add_func("delete", _backend_call(backend.delete))
                b.add_func("size", _backend_call(backend.size))
                b.add_func("available-space", _backend_call(backend.available_space))
            with root.add_instance(f"leasedb:plugin/types@{INTERFACE_VERSION}"):
                pass
        if self.clock is not None:
            # The plugin reads the time from wasi:clocks/wall-clock; ours replaces WASI's.
            wall = next((i for i in self.imports if i.startswith("wasi:clocks/wall-clock@")), None)
            if wall is not None:
                linker.allow_shadowing = True
                clock = self.clock

                def now(_store: Any) -> wc.Record:
                    t = clock()
                    secs = int(t)
                    return record(seconds=secs, nanoseconds=int((t - secs) * 1e9))

                with linker.root() as root, root.add_instance(wall) as w:
                    w.add_func("now", now)
                    w.add_func("resolution", lambda _s: record(seconds=0, nanoseconds=1))
                linker.allow_shadowing = False
        return linker

    # -- lifecycle --------------------------------------------------------

    def _launch(self, handover: Optional[bytes] = None) -> None:
        """A fresh store and instance: init (taking over `handover`), then the crawler's settings."""
        wasi = wasmtime.WasiConfig()
        wasi.preopen_dir(self.plugin_dir, GUEST_STATE_DIR)
        wasi.stderr_custom = self._on_stderr
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasi)
        store.set_limits(memory_size=self.memory_cap)
        self._store = store
        self._funcs = {}
        try:
            self._arm(self.init_deadline)
            self._instance = self._linker.instantiate(store, self.component)
            self.init_report = self._invoke("init", self._config, handover, deadline=self.init_deadline)
            self._invoke("crawler-configure", self._crawler, deadline=self.init_deadline)
        except PluginError as refused:
            self._drop()
            raise Unavailable(f"the plugin refused to start: {refused}") from refused
        except Exception as e:
            self._drop()
            raise Unavailable(f"the plugin could not start: {e}") from e

    def _drop(self) -> None:
        self._store = None
        self._instance = None
        self._funcs = {}

    def stop(self) -> None:
        """Lets the plugin close its database cleanly, then drops the instance."""
        with self._lock:
            if self._instance is not None:
                try:
                    self._invoke("shutdown")
                except Exception:
                    pass
            self._drop()
            self._ticker.stop()

    def __enter__(self) -> "Plugin":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- calls ------------------------------------------------------------

    def call(self, name: str, *params: Any) -> Any:
        """Calls export `name` (see `EXPORTS`) and returns its ok value.

        Raises `PluginError` for the plugin's error, an `InstanceDied`
        subclass if the instance died in the call, `Unavailable` if no
        instance could be started."""
        with self._lock:
            if self._instance is None:
                self.restarts += 1
                self._relaunch()
            if name == "crawler-configure" and params:
                self._crawler = params[0]  # kept for instances started after a fault
            return self._invoke(name, *params)

    def _relaunch(self) -> None:
        """Replaces a dead instance. After one death the new instance takes
        over the uploads in flight the dead one staged, so only the fatal call
        failed; after a second death in a row it starts cold, since the staged
        state may be what kills it."""
        if self._deaths_in_a_row <= 1:
            try:
                self._launch(RESUME_HANDOVER)
                return
            except Unavailable as e:
                self._stderr(f"leasedb host: the uploads in flight could not be taken over ({e}); starting cold\n".encode())
        self._launch()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """`plugin.add_lease(account, si)` is `plugin.call("add-lease", ...)`."""
        wit = name.replace("_", "-")
        if wit not in EXPORTS:
            raise AttributeError(name)
        return lambda *params: self.call(wit, *params)

    def _func(self, name: str) -> wc.Func:
        func = self._funcs.get(name)
        if func is None:
            iface, wit = EXPORTS[name]
            store, instance = self._store, self._instance
            index = instance.get_export_index(store, iface)
            index = instance.get_export_index(store, wit, index) if index else None
            func = instance.get_func(store, index) if index else None
            if func is None:
                raise Unavailable(f"the component does not export {iface}#{wit}")
            self._funcs[name] = func
        return func

    def _arm(self, deadline: Optional[float] = None) -> None:
        seconds = self.call_deadline if deadline is None else deadline
        ticks = max(1, int(seconds / EPOCH_TICK + 0.999)) + 1
        self._store.set_epoch_deadline(ticks)
        self._recent_stderr = b""

    def _invoke(self, name: str, *params: Any, deadline: Optional[float] = None) -> Any:
        store = self._store
        func = self._func(name)
        result_ty = func.type(store).result
        self._arm(deadline)
        try:
            value = func(store, *params)
            func.post_return(store)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            died = self._classify(e)
            self._drop()
            self._deaths_in_a_row += 1
            raise died from e
        except Exception as e:
            # An import raised something other than BackendError: wasmtime
            # traps the instance and hands back the exception itself.
            self._drop()
            self._deaths_in_a_row += 1
            raise Trapped(f"a host function failed: {e}") from e
        self._deaths_in_a_row = 0
        if isinstance(result_ty, wc.ResultType):
            ok, payload = split_result(result_ty, value)
            if not ok:
                raise PluginError(payload)
            return payload
        return value

    def _classify(self, e: Exception) -> Exception:
        message = getattr(e, "message", None) or str(e)
        # wasmtime's text ends with the root cause ("Caused by: wasm trap: ..."),
        # after a backtrace.
        cause = message.rsplit("Caused by:", 1)[-1].strip().splitlines()
        cause = cause[0].strip() if cause else "trapped"
        if getattr(e, "trap_code", None) == wasmtime.TrapCode.INTERRUPT or "wasm trap: interrupt" in cause:
            return DeadlineExceeded("the call ran past its deadline")
        # Rust's allocator reports a refused growth on stderr before it aborts.
        if b"memory allocation of" in self._recent_stderr:
            return MemoryExhausted("the plugin reached its memory cap")
        return Trapped(cause)

    def _on_stderr(self, data: bytes) -> None:
        self._recent_stderr = (self._recent_stderr + bytes(data))[-4096:]
        try:
            self._stderr(bytes(data))
        except Exception:
            pass


def func_type(engine: wasmtime.Engine, component: wc.Component, name: str) -> wc.FuncType:
    """The WIT type of export `name` (see `EXPORTS`), read from the component."""
    iface, wit = EXPORTS[name]
    instance = component.type.exports(engine)[iface].ty
    return instance.exports(engine)[wit].ty


def load_component(engine: wasmtime.Engine, path: str, cache_dir: str) -> wc.Component:
    """The component at `path`, compiled once per binary: the compiled code is
    kept in `cache_dir` under the hash of the component and of the engine."""
    with open(path, "rb") as f:
        wasm = f.read()
    # Deserializing checks the engine's version and settings; the key need not.
    digest = hashlib.sha256(wasm).hexdigest()
    cached = os.path.join(cache_dir, f"{digest}.cwasm")
    if os.path.exists(cached):
        try:
            return wc.Component.deserialize_file(engine, cached)
        except Exception:
            pass  # stale or damaged: compile again
    compiled = wc.Component(engine, wasm)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        temp = f"{cached}.tmp-{os.getpid()}"
        with open(temp, "wb") as f:
            f.write(compiled.serialize())
        os.replace(temp, cached)
    except OSError:
        pass  # a cache that cannot be written only costs time
    return compiled


def crawler_config(settings: Dict[str, Any]) -> wc.Record:
    """The WIT `crawler-config` from `{"policy": "disabled" | ("age", secs|None)
    | ("cutoff-date", ts), "history-limit": n, "min-cycle-seconds": s}`."""
    policy = settings["policy"]
    if isinstance(policy, str):
        policy = wc.Variant(policy)
    elif isinstance(policy, tuple):
        policy = wc.Variant(policy[0], policy[1])
    return record(policy=policy, history_limit=settings["history-limit"],
                  min_cycle_seconds=settings["min-cycle-seconds"])


def _backend_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A backend import: `BackendError` becomes the WIT `backend-error`;
    anything else propagates, which traps the instance."""

    def call(_store: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except BackendError as e:
            return wc.Variant(e.kind) if e.kind == "not-found" else wc.Variant(e.kind, e.message)

    return call


def _page(page: Any) -> wc.Record:
    return record(entries=[record(key=e.key, size=e.size) for e in page.entries], next=page.next)


def _bounded_read(backend: Backend, key: str, offset: int, length: int) -> bytes:
    if length > MAX_READ_LENGTH:
        # "Everything" is fine while what is there fits; truncating would look like the end.
        remaining = max(0, backend.size(key) - offset)
        if remaining > MAX_READ_LENGTH:
            raise BackendError("permanent", f"reading {key}: {remaining} bytes at once; at most {MAX_READ_LENGTH} per read")
    return bytes(backend.read(key, offset, length))


def _load_or_create_node_id(state_dir: str) -> bytes:
    """This server's 20-byte node id, kept in `<state_dir>/node-id`."""
    path = os.path.join(state_dir, "node-id")
    try:
        with open(path, "rb") as f:
            data = f.read()
        if len(data) == 20:
            return data
    except FileNotFoundError:
        pass
    data = os.urandom(20)
    temp = path + ".tmp"
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    return data


class _Ticker:
    """Advances the engine's epoch every `EPOCH_TICK`, which is what the call
    deadline counts (wasmtime's epoch interruption)."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(engine,), daemon=True)
        self._thread.start()

    def _run(self, engine: wasmtime.Engine) -> None:
        while not self._stop.wait(EPOCH_TICK):
            engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
