"""The journal: an append-only record, on the pnode's disk, of what a platform created.

Written *before* each creation (write-ahead), so a crash between the two
leaves a record of something that may not exist — undo tolerates that — and
never something that exists without a record. Lines are JSON:

    {"add": {"kind": "link", "id": "d1a2b3cb0", "owner": "vnetwork:vnet", ...}}
    {"del": "link:d1a2b3cb0"}
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

Entry = dict[str, Any]


def key(entry: Entry) -> str:
    return f"{entry['kind']}:{entry['id']}"


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path
        self._live: dict[str, Entry] = {}
        self._lock = threading.Lock()  # the channel's requests and the timeline's events both write
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    self._replay(line)
        self._file = open(path, "a", buffering=1)  # line-buffered: each record reaches the kernel at once

    def _replay(self, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return  # a torn last line after a crash
        if "add" in record:
            self._live[key(record["add"])] = record["add"]
        elif "del" in record:
            self._live.pop(record["del"], None)

    def add(self, kind: str, ident: str, owner: str, **data: Any) -> Entry:
        entry = {"kind": kind, "id": ident, "owner": owner, **data}
        with self._lock:
            if key(entry) not in self._live:
                self._file.write(json.dumps({"add": entry}) + "\n")
                self._live[key(entry)] = entry
        return entry

    def remove(self, entry: Entry) -> None:
        with self._lock:
            if self._live.pop(key(entry), None) is not None:
                self._file.write(json.dumps({"del": key(entry)}) + "\n")

    def has(self, kind: str, ident: str) -> bool:
        return f"{kind}:{ident}" in self._live

    def get(self, kind: str, ident: str) -> Entry | None:
        return self._live.get(f"{kind}:{ident}")

    def entries(self, owner: str | None = None) -> list[Entry]:
        """Live entries in creation order, all or those of one owner."""
        with self._lock:
            return [e for e in self._live.values() if owner is None or e["owner"] == owner]

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
