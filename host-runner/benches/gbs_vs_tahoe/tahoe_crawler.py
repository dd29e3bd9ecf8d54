"""Stock Tahoe-LAFS 1.20's lease-checking crawler over a storage directory,
driven as its storage server drives it (`ShareCrawler.start_slice`), but
with no CPU throttling: one slice is allowed to run a whole cycle.

Usage: python tahoe_crawler.py STORAGE_DIR
Prints one JSON line: the first and second cycles' seconds and the shares
each examined.
"""

import json
import sys
import time

from allmydata.storage.server import StorageServer


def main(storedir):
    server = StorageServer(storedir, b"\x00" * 20)
    crawler = server.lease_checker
    # `start_slice` yields after `cpu_slice` seconds; never, here.
    crawler.cpu_slice = float("inf")
    # `start_slice` returns before re-arming its timer when the service is
    # not running, so no reactor is needed.
    crawler.running = False
    cycles = []
    for _ in range(2):
        started = time.perf_counter()
        crawler.start_slice()
        took = time.perf_counter() - started
        assert crawler.state["current-cycle"] is None, "the cycle did not finish"
        history = crawler._history_serializer.load()
        last = history[str(crawler.state["last-cycle-finished"])]
        cycles.append(
            {
                "seconds": took,
                "shares": last["space-recovered"]["examined-shares"],
            }
        )
    print(json.dumps({"first": cycles[0], "steady": cycles[1]}))


if __name__ == "__main__":
    main(sys.argv[1])
