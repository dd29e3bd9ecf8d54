"""Stores a file, reads it back and lists its lease, with the plugin over a
directory backend in Tahoe's layout. Copy and adapt:

    python smoke.py PATH/TO/leasedb_plugin.wasm [WORKDIR]
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from leasedb_host import DirectoryBackend, Plugin, PluginError  # noqa: E402


def main() -> None:
    component = sys.argv[1]
    work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="leasedb-smoke-")
    storage = DirectoryBackend(os.path.join(work, "storage"))
    with Plugin(component, os.path.join(work, "state"), storage) as plugin:
        si = bytes(range(16))  # a storage index: 16 bytes
        data = b"hello, leasedb! " * 1000
        session = 1
        plugin.session_opened(session)
        # An account is `None` (anonymous) or the account's name.
        allocation = plugin.allocate(session, "alice", si, [0], len(data))
        print("allocated shares:", allocation.allocated)
        plugin.write(si, 0, 0, data)
        plugin.close(si, 0)
        assert plugin.read(si, 0, 0, len(data)) == data
        print("read back", len(data), "bytes")
        for lease in plugin.list_leases(si):
            print(f"lease: share {lease.__dict__['share-number']} account {lease.__dict__['account-name']!r}"
                  f" expires {lease.expires}")
        try:
            plugin.read(b"short", 0, 0, 1)
        except PluginError as e:
            print("a bad storage index is refused:", e.tag, e.payload.tag)
        plugin.session_closed(session)
    print("files under", os.path.join(work, "storage"), ":")
    for root, _dirs, files in os.walk(os.path.join(work, "storage")):
        for name in files:
            print("  ", os.path.relpath(os.path.join(root, name), work))


if __name__ == "__main__":
    main()
