"""Where `serve`'s CPU time goes, by part, from a `perf record -g` of it.

Usage: perf script -i FILE | python3 perf_breakdown.py
(record with the `wasm-profiling` feature and LEASEDB_WASM_PERFMAP=1 so
the plugin's compiled code has names; see docs/performance.md).

Each sample is put in one part by its stack, leaf first: allocator and
memory-copy frames pass the sample on to their caller; the first frame
that names a part decides. Kernel samples are placed by the system call
or subsystem their kernel stack shows.
"""

import collections
import re
import sys

PASS = re.compile(
    r"^(malloc|free|cfree|realloc|calloc|_int_malloc|_int_free|_int_realloc|"
    r"malloc_consolidate|unlink_chunk|__memmove|__memcpy|__memset|memcpy|memmove|"
    r"memset|memcmp|dlmalloc|dlfree|dlrealloc|__rust_alloc|__rust_dealloc|"
    r"__rust_realloc|__rdl_|_RNvCs\w+___rust|_RNvCs\w+___rdl|"
    r"rust_sqlite_wasm_(malloc|free|realloc)|alloc::|core::ptr::drop_in_place|"
    r"<alloc::|core::ops::function)"
)

KERNEL_RULES = [
    ("the sync (fdatasync)", ("fdatasync", "fsync", "ext4_sync_file", "file_write_and_wait",
                              "jbd2", "blkdev_issue_flush", "iowrite16", "virtio")),
    ("kernel network stack", ("tcp_", "sock_", "inet_", "ip_", "__sys_sendto",
                              "__sys_recvfrom", "skb", "net_rx", "napi", "__dev_queue_xmit",
                              "loopback", "__x64_sys_sendmsg", "__x64_sys_recvmsg",
                              "sock_read_iter", "sock_write_iter", "unix_stream")),
    ("thread hand-offs (futex, scheduler)", ("futex",)),
    ("async I/O polling (epoll)", ("epoll", "ep_poll")),
    ("file I/O, kernel (database and WAL writes)", ("ext4_", "vfs_write", "vfs_read",
                                                   "generic_perform_write", "filemap",
                                                   "pwrite", "pread", "iomap")),
    ("scheduler and interrupts, other", ("finish_task_switch", "schedule", "irq",
                                        "softirq", "sched")),
]


def wasm_part(frames):
    """A sample inside the plugin's compiled code."""
    for sym, dso in frames:
        if "perf-" not in dso:
            break
        if PASS.match(sym):
            continue
        if "vfs" in sym or "disk4wasi" in sym:
            return "plugin: VFS (SQLite's file layer)"
        if sym.startswith("sqlite3") or sym.startswith("yy") or re.match(r"^[a-z][A-Za-z0-9]*$", sym):
            # Plain C names: SQLite's internals (the plugin's Rust is mangled).
            return "SQLite (inside the plugin)"
        if "cabi" in sym or "wit_bindgen" in sym or "#" in sym:
            return "canonical ABI copies (guest side)"
        if "trampoline" in sym:
            return "wasm engine code (trampolines)"
        if "leasedb_plugin" in sym:
            return "plugin: engine (Rust)"
    return "SQLite (inside the plugin)" if frames and frames[0][0].startswith(("dl", "mem")) else "wasm, other"


def host_part(sym):
    rules = [
        ("TLS (rustls, ring)", ("rustls", "ring::", "ring_core", "aes_", "gcm_", "chacha",
                                "sha256", "sha512", "x25519", "bn_mul", "GFp_", "aes_hw")),
        ("hyper/HTTP", ("hyper::", "hyper_util", "http::", "httparse", "h1::", "http_body")),
        ("canonical ABI copies (host side)", ("component::func", "typed::", "lower", "lift",
                                              "realloc", "ComponentType", "component::values",
                                              "InstanceFlags", "wit_bindgen")),
        ("WASI host calls (the VFS's file I/O)", ("wasmtime_wasi", "cap_std", "cap_primitives",
                                                  "io_lifetimes", "fs_set_times")),
        ("wasm engine (host side: entry, traps, epochs)", ("wasmtime", "cranelift")),
        ("the service hop to the plugin thread", ("host_runner::service", "mpsc", "oneshot",
                                                  "std::sync::", "parking", "Condvar", "futex")),
        ("async runtime (tokio)", ("tokio::",)),
        ("metrics and logs", ("prometheus", "tracing", "metrics")),
        ("host-runner request handling", ("host_runner::server", "leasedb_gbs_wire",
                                          "base64", "ciborium", "subtle")),
        ("host-runner plugin glue and backend", ("host_runner::",)),
    ]
    for part, needles in rules:
        if any(n in sym for n in needles):
            return part
    return None


def classify(frames):
    if not frames:
        return "unknown"
    sym, dso = frames[0]
    if "kernel" in dso:
        kernel = " ".join(s for s, d in frames if "kernel" in d)
        for part, needles in KERNEL_RULES:
            if any(n in kernel for n in needles):
                return part
        return "kernel, other"
    if "perf-" in dso:
        return wasm_part(frames)
    for sym, dso in frames:
        if "perf-" in dso:
            return wasm_part([(s, d) for s, d in frames if "perf-" in d])
        if PASS.match(sym) or "libc" in dso and not sym.startswith("__vdso"):
            continue
        if "vdso" in dso:
            return "clock reads (vdso)"
        part = host_part(sym)
        if part:
            return part
    return "allocator and copies (host, caller unknown)"


def main():
    parts = collections.Counter()
    threads = collections.Counter()
    total = 0
    frames, comm = [], None
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                parts[classify(frames)] += 1
                threads[comm] += 1
                total += 1
            frames, comm = [], None
            continue
        if not line.startswith((" ", "\t")):
            comm = line.split()[0]
            continue
        m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((sym, m.group(2)))
    if comm is not None:
        parts[classify(frames)] += 1
        threads[comm] += 1
        total += 1
    print(f"{total} samples")
    print("| part | share of serve's CPU samples |")
    print("|---|---|")
    for part, n in parts.most_common():
        print(f"| {part} | {100 * n / total:.1f}% |")
    print()
    print("| thread | share |")
    print("|---|---|")
    for t, n in threads.most_common():
        print(f"| {t} | {100 * n / total:.1f}% |")


if __name__ == "__main__":
    main()
