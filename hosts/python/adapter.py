"""The conformance adapter of the Python host: one fresh server per process
(an in-memory backend with fault injection, call counts and a crash switch,
a temporary state directory, a clock standing still), driven by JSON lines on
stdin/stdout as `conformance-tests/ADAPTER.md` specifies.

    python adapter.py --component PATH --test-faults-component PATH
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import os
import shutil
import sys
import tempfile
import traceback
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wasmtime  # noqa: E402
from wasmtime import component as wc  # noqa: E402

from leasedb_host import (  # noqa: E402
    BackendError,
    DeadlineExceeded,
    ListPage,
    MemoryExhausted,
    ObjectEntry,
    Plugin,
    PluginError,
    Trapped,
    Unavailable,
)
from leasedb_host.backend import page_of, validate_key  # noqa: E402
from leasedb_host.host import EXPORTS, classes, func_type, load_component  # noqa: E402

BACKEND_CAPACITY = 1 << 30
START_TIME = 1_700_000_000
NODE_ID = bytes(range(20))
OPS = ("list", "read", "write", "delete", "size", "available-space")


class AdapterError(Exception):
    """The request cannot be served (bad op or arguments)."""


class Crash(Exception):
    """Raised inside a backend call to kill the instance (`crash-during`)."""


class MemoryBackend:
    """The objects, in memory, with the capacity the cases expect."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.objects: Dict[str, bytes] = {}
        self.keys: List[str] = []  # sorted, for listings

    def used(self) -> int:
        return sum(len(v) for v in self.objects.values())

    def list_objects(self, prefix: str, start_after: Optional[str], limit: int) -> ListPage:
        validate_key(prefix, prefix=True)
        start = bisect.bisect_left(self.keys, prefix)

        def matching():
            for key in self.keys[start:]:
                if not key.startswith(prefix):
                    return
                yield ObjectEntry(key, len(self.objects[key]))

        return page_of(matching(), start_after, limit)

    def read(self, key: str, offset: int, length: int) -> bytes:
        validate_key(key)
        if key not in self.objects:
            raise BackendError.not_found()
        return self.objects[key][offset : offset + length]

    def write(self, key: str, data: bytes) -> None:
        validate_key(key)
        after = self.used() - len(self.objects.get(key, b"")) + len(data)
        if after > self.capacity:
            raise BackendError("permanent", f"writing {key}: no space ({after} bytes would exceed {self.capacity})")
        if key not in self.objects:
            bisect.insort(self.keys, key)
        self.objects[key] = bytes(data)

    def delete(self, key: str) -> None:
        validate_key(key)
        if self.objects.pop(key, None) is not None:
            self.keys.remove(key)

    def size(self, key: str) -> int:
        validate_key(key)
        if key not in self.objects:
            raise BackendError.not_found()
        return len(self.objects[key])

    def available_space(self) -> int:
        return max(0, self.capacity - self.used())


class TestBackend:
    """What the plugin sees: a crash switch, then faults and call counts, then
    the memory backend (the order of the Rust harness)."""

    def __init__(self, memory: MemoryBackend) -> None:
        self.memory = memory
        self.faults: List[Tuple[str, str, BackendError]] = []
        self.counts = {op: 0 for op in OPS}
        self.crash: Optional[Tuple[str, str]] = None

    def _check(self, op: str, key: str) -> None:
        if self.crash is not None and self.crash[0] == op and key.startswith(self.crash[1]):
            self.crash = None
            raise Crash(f"the server crashed during {op} {key}")
        self.counts[op] += 1
        for fop, prefix, error in self.faults:
            if fop == op and (key.startswith(prefix) or (op == "list" and prefix.startswith(key))):
                raise BackendError(error.kind, error.message)

    def list_objects(self, prefix, start_after, limit):
        self._check("list", prefix)
        return self.memory.list_objects(prefix, start_after, limit)

    def read(self, key, offset, length):
        self._check("read", key)
        return self.memory.read(key, offset, length)

    def write(self, key, data):
        self._check("write", key)
        return self.memory.write(key, data)

    def delete(self, key):
        self._check("delete", key)
        return self.memory.delete(key)

    def size(self, key):
        self._check("size", key)
        return self.memory.size(key)

    def available_space(self):
        self._check("available-space", "")
        return self.memory.available_space()


# -- JSON <-> wasmtime values, driven by the WIT types -----------------------

INTS = (wc.U8, wc.U16, wc.U32, wc.U64, wc.S8, wc.S16, wc.S32, wc.S64)


def cases_of(ty: Any) -> List[Tuple[str, Any]]:
    if isinstance(ty, wc.OptionType):
        return [("none", None), ("some", ty.payload)]
    return list(ty.cases)


def tagged(ty: Any) -> bool:
    """Whether wasmtime passes this variant or option as `Variant` (its
    cases' values could be confused), rather than the bare payload."""
    seen: set = set()
    for _, case in cases_of(ty):
        c = classes(case)
        if c & seen:
            return True
        seen |= c
    return False


def from_json(ty: Any, j: Any) -> Any:
    if isinstance(ty, INTS):
        return int(j)
    if isinstance(ty, (wc.Bool, wc.String, wc.Char)):
        return j
    if isinstance(ty, wc.ListType):
        if isinstance(ty.element, wc.U8):
            return base64.b64decode(j, validate=True)
        return [from_json(ty.element, x) for x in j]
    if isinstance(ty, wc.RecordType):
        r = wc.Record()
        for name, fty in ty.fields:
            setattr(r, name, from_json(fty, j[name]))
        return r
    if isinstance(ty, wc.TupleType):
        return tuple(from_json(e, x) for e, x in zip(ty.elements, j))
    if isinstance(ty, wc.EnumType):
        return j["tag"]
    if isinstance(ty, wc.OptionType) and not tagged(ty):
        return None if j is None else from_json(ty.payload, j)
    if isinstance(ty, wc.OptionType):
        return wc.Variant("none") if j is None else wc.Variant("some", from_json(ty.payload, j))
    if isinstance(ty, wc.VariantType):
        cases = dict(ty.cases)
        if j["tag"] not in cases:
            raise AdapterError(f"no case {j['tag']!r}")
        case = cases[j["tag"]]
        payload = None if case is None else from_json(case, j.get("val"))
        return wc.Variant(j["tag"], payload) if tagged(ty) else payload
    raise AdapterError(f"unsupported type {ty!r}")


def to_json(ty: Any, v: Any) -> Any:
    if isinstance(ty, INTS + (wc.Bool, wc.String, wc.Char)):
        return v
    if isinstance(ty, wc.ListType):
        if isinstance(ty.element, wc.U8):
            return base64.b64encode(bytes(v)).decode()
        return [to_json(ty.element, x) for x in v]
    if isinstance(ty, wc.RecordType):
        return {name: to_json(fty, getattr(v, name)) for name, fty in ty.fields}
    if isinstance(ty, wc.TupleType):
        return [to_json(e, x) for e, x in zip(ty.elements, v)]
    if isinstance(ty, wc.EnumType):
        return {"tag": v}
    if isinstance(ty, wc.OptionType) and tagged(ty):
        return None if v.tag == "none" else to_json(ty.payload, v.payload)
    if isinstance(ty, wc.OptionType):
        return None if v is None else to_json(ty.payload, v)
    if isinstance(ty, wc.VariantType):
        if tagged(ty):
            tag, payload = v.tag, v.payload
        else:
            # Untagged: the value's class tells the case; the no-payload case is None.
            tag, payload = next(
                (name, v) for name, case in sorted(ty.cases, key=lambda c: c[1] is None)
                if (case is None and v is None) or (case is not None and v is not None and isinstance(v, tuple(classes(case))))
            )
        case = dict(ty.cases)[tag]
        return {"tag": tag} if case is None else {"tag": tag, "val": to_json(case, payload)}
    raise AdapterError(f"unsupported type {ty!r}")


# -- the server ---------------------------------------------------------------


class Server:
    """One fresh server: what the requests of one case act on."""

    def __init__(self, components: Dict[str, str]) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.component_paths = components
        self.components: Dict[str, wc.Component] = {}
        self.cache_dir = os.path.join(tempfile.gettempdir(), "leasedb-conformance-python-cache")
        self.work = tempfile.mkdtemp(prefix="leasedb-python-adapter-")
        self.state_dir = os.path.join(self.work, "state")
        self.memory = MemoryBackend(BACKEND_CAPACITY)
        self.backend = TestBackend(self.memory)
        self.clock = START_TIME
        self.plugin: Optional[Plugin] = None
        self.current: Optional[wc.Component] = None

    def component(self, which: str) -> wc.Component:
        if which not in self.component_paths:
            raise AdapterError(f"unknown component {which!r}")
        if which not in self.components:
            self.components[which] = load_component(self.engine, self.component_paths[which], self.cache_dir)
        return self.components[which]

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def stop(self) -> None:
        if self.plugin is not None:
            self.plugin.stop()
            self.plugin = None

    def running(self) -> Plugin:
        if self.plugin is None:
            raise AdapterError("no instance is running (send `start` first)")
        return self.plugin

    # Each op returns the JSON ok value or raises.

    def op_start(self, options: Dict[str, Any]) -> Any:
        self.stop()
        o = lambda name, default: default if options.get(name) is None else options[name]  # noqa: E731
        component = self.component(o("component", "shipped"))
        crawler = options.get("crawler")
        if crawler is not None:
            crawler = from_json(self._types("crawler-configure", component)[0], crawler)
        self.current = component
        plugin = Plugin(
            component,
            self.state_dir,
            self.backend,
            chunk_size=o("chunk-size", 512 << 10),
            max_immutable_size=o("max-immutable-size", 64 << 30),
            node_id=NODE_ID,
            memory_cap=o("memory-cap", 256 << 20),
            call_deadline=o("call-deadline-ms", 10_000) / 1000,
            clock=lambda: self.clock,
            engine=self.engine,
            crawler=crawler,
        )
        self.plugin = plugin
        return to_json(func_type(self.engine, component, "init").result.ok, plugin.init_report)

    def _types(self, func: str, component: wc.Component) -> List[Any]:
        return [ty for _, ty in func_type(self.engine, component, func).params]

    def op_stop(self) -> Any:
        self.stop()
        return None

    def op_component_imports(self, component: str) -> Any:
        return list(self.component(component).type.imports(self.engine).keys())

    def op_put_object(self, key: str, data: str) -> Any:
        self.memory.write(key, base64.b64decode(data))

    def op_object(self, key: str) -> Any:
        data = self.memory.objects.get(key)
        return None if data is None else base64.b64encode(data).decode()

    def op_delete_object(self, key: str) -> Any:
        self.memory.delete(key)

    def op_object_keys(self) -> Any:
        return sorted(self.memory.keys, key=lambda k: k.encode())

    def op_fail(self, op: str, key_prefix: str, error: Dict[str, Any]) -> Any:
        self._op(op)
        self.backend.faults.append((op, key_prefix, BackendError(error["tag"], error.get("val") or "")))

    def op_clear_faults(self) -> Any:
        self.backend.faults.clear()

    def op_calls(self, op: str) -> Any:
        return self.backend.counts[self._op(op)]

    def op_crash_during(self, op: str, key_prefix: str) -> Any:
        self.backend.crash = (self._op(op), key_prefix)

    def op_now(self) -> Any:
        return self.clock

    def op_set_now(self, secs: int) -> Any:
        self.clock = int(secs)

    def op_remove_database(self) -> Any:
        for name in ("leasedb.sqlite3", "leasedb.sqlite3-wal", "leasedb.sqlite3-shm", "leasedb.sqlite3-journal"):
            try:
                os.remove(os.path.join(self.state_dir, "plugin", name))
            except FileNotFoundError:
                pass

    def op_call(self, func: str, params: List[Any]) -> Any:
        plugin = self.running()
        if func not in EXPORTS or func in ("init", "handover", "shutdown"):
            raise AdapterError(f"unknown function {func!r}")
        ty = func_type(self.engine, self.current, func)
        types = [t for _, t in ty.params]
        if len(types) != len(params):
            raise AdapterError(f"{func} takes {len(types)} parameters, got {len(params)}")
        args = [from_json(t, p) for t, p in zip(types, params)]
        result_ty = ty.result
        value = plugin.call(func, *args)
        if result_ty is None:
            return None
        if isinstance(result_ty, wc.ResultType):
            return None if result_ty.ok is None else to_json(result_ty.ok, value)
        return to_json(result_ty, value)

    @staticmethod
    def _op(op: str) -> str:
        if op not in OPS:
            raise AdapterError(f"unknown backend op {op!r}")
        return op


def error_json(e: BaseException, server: Server) -> Dict[str, Any]:
    if isinstance(e, DeadlineExceeded):
        return {"kind": "deadline"}
    if isinstance(e, MemoryExhausted):
        return {"kind": "memory-exhausted"}
    if isinstance(e, Trapped):
        return {"kind": "trapped", "message": str(e)}
    if isinstance(e, Unavailable):
        return {"kind": "unavailable", "message": str(e)}
    return {"kind": "adapter", "message": f"{type(e).__name__}: {e}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--component", required=True)
    parser.add_argument("--test-faults-component")
    args = parser.parse_args()
    components = {"shipped": args.component}
    if args.test_faults_component:
        components["test-faults"] = args.test_faults_component
    server = Server(components)
    out = sys.stdout
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            rid = request.get("id")
            try:
                op = request["op"].replace("-", "_")
                handler = getattr(server, f"op_{op}", None)
                if handler is None:
                    raise AdapterError(f"unknown op {request['op']!r}")
                kwargs = {k.replace("-", "_"): v for k, v in (request.get("args") or {}).items()}
                ok = handler(**kwargs)
                response = {"id": rid, "ok": ok}
            except PluginError as e:
                response = {"id": rid, "err": {"kind": "plugin", "error": plugin_error_json(server, request, e)}}
            except Exception as e:  # every failure is answered, never fatal
                if not isinstance(e, (AdapterError, PluginError, DeadlineExceeded, MemoryExhausted, Trapped, Unavailable)):
                    traceback.print_exc(file=sys.stderr)
                response = {"id": rid, "err": error_json(e, server)}
            out.write(json.dumps(response) + "\n")
            out.flush()
    finally:
        server.close()


def plugin_error_json(server: Server, request: Dict[str, Any], e: PluginError) -> Any:
    """The error as JSON, typed by the err type of the function that failed."""
    func = (request.get("args") or {}).get("func", "allocate")
    return to_json(func_type(server.engine, server.current, func).result.err, e.value)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Tearing down wasmtime's runtime threads at interpreter exit can abort
    # noisily; everything is flushed and cleaned up, so leave at once.
    os._exit(0)
