#!/usr/bin/env python3
"""kvserver: a tiny primary-backup key-value server, the system under test of
jepsy's "test your own system" example.

Every node runs this program.  The first node in ``--nodes`` is the primary
(fixed: there is no failover); the others are backups.

- Clients may talk to any node, one JSON object per line over TCP:
  ``{"op": "read", "key": k}``, ``{"op": "write", "key": k, "value": v}``,
  ``{"op": "cas", "key": k, "old": a, "new": b}``.  Answers are
  ``{"ok": true, "value": v}`` or ``{"ok": false, "error": "...", "definite": bool}``
  (``definite`` = the request certainly had no effect).
- A backup forwards every request to the primary and relays the answer.
- The primary handles one update at a time: it appends the update to its
  log file (so a killed primary restarts with it), sends it to every backup
  and acknowledges the client once a majority of nodes (itself included)
  has it.  Without a majority within ``--replication-timeout`` it answers
  an indefinite error (the update is in its log and may still spread).
- Reads are answered by the primary from its state.

Deliberate bugs, for jepsy to find (``--bug NAME``, repeatable):

``read-from-backups``
    Backups answer reads from their own state instead of forwarding them.
    A backup that is cut off from the primary, or merely behind, returns
    stale values: not linearizable (found with partitions, often without).
``ack-before-replicate``
    The primary acknowledges an update as soon as it is applied in memory;
    logging and replication happen in the background every
    ``--flush-interval`` seconds.  Killing the primary loses acknowledged
    updates: after the restart reads go back in time (found with kills).

Usage::

    python3 kvserver.py --node n1 --nodes n1=10.0.0.11:7000,n2=10.0.0.12:7000 \\
        --dir /var/lib/kv/n1 [--bug read-from-backups]

Only the standard library is used, so it runs on any node with Python 3.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import sys
import threading
import time
from typing import Any

BUGS = ("read-from-backups", "ack-before-replicate")


class Node:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name: str = args.node
        self.peers: dict[str, tuple[str, int]] = {}
        for item in args.nodes.split(","):
            n, addr = item.split("=", 1)
            host, port = addr.rsplit(":", 1)
            self.peers[n] = (host, int(port))
        self.order = list(self.peers)
        self.primary = self.order[0]
        self.is_primary = self.name == self.primary
        self.bugs = set(args.bug or ())
        self.repl_timeout: float = args.replication_timeout
        self.flush_interval: float = args.flush_interval
        os.makedirs(args.dir, exist_ok=True)
        self.log_path = os.path.join(args.dir, "kv.log")
        self.state: dict[str, Any] = {}
        self.log: list[dict[str, Any]] = []  # entry i has seq i + 1
        self.lock = threading.Lock()  # state + log
        self.update_lock = threading.Lock()  # primary: one update at a time
        self.cond = threading.Condition(self.lock)
        self.acked: dict[str, int] = {}  # backup -> highest seq it holds
        self.pending: list[dict[str, Any]] = []  # ack-before-replicate: not yet logged
        self._load()
        self.log_file = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115

    # -- the log

    def _load(self) -> None:
        if not os.path.exists(self.log_path):
            return
        with open(self.log_path, encoding="utf-8") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    break  # a torn last line
                if e["seq"] != len(self.log) + 1:
                    break
                self.log.append(e)
                self.state[e["key"]] = e["value"]

    def _append(self, entries: list[dict[str, Any]]) -> None:
        """Under self.lock: log entries (seq already set) and apply them."""
        for e in entries:
            self.log_file.write(json.dumps(e) + "\n")
            self.log.append(e)
            self.state[e["key"]] = e["value"]
        self.log_file.flush()

    # -- primary

    def update(
        self, key: str, value: Any, cas_old: Any = None, cas: bool = False
    ) -> dict[str, Any]:
        with self.update_lock:
            with self.lock:
                if cas and self.state.get(key) != cas_old:
                    return {"ok": False, "error": "cas-mismatch", "definite": True}
                if "ack-before-replicate" in self.bugs:
                    # BUG: acknowledged before it is logged or replicated.
                    self.state[key] = value
                    self.pending.append({"key": key, "value": value})
                    return {"ok": True}
                seq = len(self.log) + 1
                self._append([{"seq": seq, "key": key, "value": value}])
                self.cond.notify_all()
            if self._wait_majority(seq):
                return {"ok": True}
            return {"ok": False, "error": "no-majority", "definite": False}

    def _wait_majority(self, seq: int) -> bool:
        need = len(self.order) // 2 + 1
        deadline = time.monotonic() + self.repl_timeout
        with self.lock:
            while True:
                have = 1 + sum(1 for s in self.acked.values() if s >= seq)
                if have >= need:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)

    def flusher(self) -> None:
        """ack-before-replicate: log pending updates every flush_interval."""
        while True:
            time.sleep(self.flush_interval)
            with self.lock:
                if self.pending:
                    entries = []
                    for p in self.pending:
                        entries.append({"seq": len(self.log) + 1 + len(entries), **p})
                    self.pending = []
                    for e in entries:  # state already applied; log them
                        self.log_file.write(json.dumps(e) + "\n")
                        self.log.append(e)
                    self.log_file.flush()
                    self.cond.notify_all()

    def replicator(self, backup: str) -> None:
        """Ship log entries to one backup, in order, forever."""
        sock: socket.socket | None = None
        reader: Any = None
        while True:
            try:
                if sock is None:
                    sock = socket.create_connection(self.peers[backup], timeout=1.0)
                    reader = sock.makefile("r", encoding="utf-8")
                    sock.sendall(b'{"op": "hello"}\n')
                    their = json.loads(reader.readline())["seq"]
                    with self.lock:
                        self.acked[backup] = their
                with self.lock:
                    start = self.acked.get(backup, 0)
                    while len(self.log) <= start:
                        self.cond.wait(0.5)
                    batch = self.log[start : start + 100]
                sock.sendall((json.dumps({"op": "replicate", "entries": batch}) + "\n").encode())
                their = json.loads(reader.readline())["seq"]
                with self.lock:
                    self.acked[backup] = their
                    self.cond.notify_all()
            except (OSError, ValueError, KeyError):
                if sock is not None:
                    sock.close()
                sock = None
                time.sleep(0.1)

    # -- backup

    def replicate(self, entries: list[dict[str, Any]]) -> int:
        with self.lock:
            fresh = [e for e in entries if e["seq"] > len(self.log)]
            if fresh and fresh[0]["seq"] == len(self.log) + 1:
                self._append(fresh)
            return len(self.log)

    def forward(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            s = socket.create_connection(self.peers[self.primary], timeout=1.0)
        except OSError as e:
            return {"ok": False, "error": f"primary unreachable: {e}", "definite": True}
        try:
            s.settimeout(self.repl_timeout + 2.0)
            s.sendall((json.dumps(req) + "\n").encode())
            line = s.makefile("r", encoding="utf-8").readline()
            if not line:
                return {"ok": False, "error": "primary closed", "definite": False}
            answer: dict[str, Any] = json.loads(line)
            return answer
        except (OSError, ValueError) as e:
            return {"ok": False, "error": f"forward failed: {e}", "definite": False}
        finally:
            s.close()

    # -- dispatch

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "hello":
            with self.lock:
                return {"seq": len(self.log)}
        if op == "replicate":
            return {"seq": self.replicate(req["entries"])}
        if op not in ("read", "write", "cas"):
            return {"ok": False, "error": f"unknown op {op!r}", "definite": True}
        if not self.is_primary:
            if op == "read" and "read-from-backups" in self.bugs:
                with self.lock:  # BUG: a backup's state may be stale
                    return {"ok": True, "value": self.state.get(req["key"])}
            return self.forward(req)
        if op == "read":
            with self.lock:
                return {"ok": True, "value": self.state.get(req["key"])}
        if op == "write":
            return self.update(req["key"], req["value"])
        return self.update(req["key"], req["new"], cas_old=req["old"], cas=True)


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        node: Node = self.server.node  # type: ignore[attr-defined]
        for line in self.rfile:
            try:
                answer = node.handle(json.loads(line))
            except (ValueError, KeyError, TypeError) as e:
                answer = {"ok": False, "error": f"bad request: {e}", "definite": True}
            self.wfile.write((json.dumps(answer) + "\n").encode())
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--node", required=True)
    p.add_argument("--nodes", required=True, help="name=host:port,... (the first is primary)")
    p.add_argument("--dir", required=True, help="this node's data directory")
    p.add_argument("--bug", action="append", choices=BUGS)
    p.add_argument("--replication-timeout", type=float, default=1.0)
    p.add_argument("--flush-interval", type=float, default=0.5)
    args = p.parse_args(argv)
    node = Node(args)
    host, port = node.peers[node.name]
    server = Server((host, port), Handler)
    server.node = node  # type: ignore[attr-defined]
    if node.is_primary:
        for b in node.order[1:]:
            threading.Thread(target=node.replicator, args=(b,), daemon=True).start()
        if "ack-before-replicate" in node.bugs:
            threading.Thread(target=node.flusher, daemon=True).start()
    print(
        f"kvserver {node.name} ({'primary' if node.is_primary else 'backup'}) on {host}:{port}, "
        f"{len(node.log)} log entries, bugs: {sorted(node.bugs) or 'none'}",
        flush=True,
    )
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
