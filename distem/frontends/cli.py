"""The ``distem`` command.

    distem up FILE          make the platform a platform file describes, record it, hold it until down
    distem down [ID]        stop a platform `up` holds (or clean it from its pnodes' journals)
    distem status           the platforms recorded on this pnode and those `up` holds
    distem record ID [DIR]  write the record of a platform `up` holds (where it is kept, or DIR)
    distem diff A B         what differs between two records (paths, or ids of kept records)
    distem clean            remove what platforms left (Distem's ``distem -q``; here, or ``--pnode`` / ``-f``)
    distem demo             a small degraded platform: asked against measured, a heatmap, a record
    distem bootstrap        prepare pnodes over ssh
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..agent.system import process_running
from ..platform.platform import DEFAULT_STATE_DIR
from ..platform.records import default_records_dir

HOLDER = "up.json"  # in a kept record: the pid of the `distem up` that holds the platform


def _report(summaries: list[dict[str, Any]], where: str, prefix: str = "") -> int:
    """Print what each platform's clean removed; the number of platforms that kept something."""
    failed = 0
    for summary in summaries:
        failures = summary["failures"]
        print(f"{prefix}platform {summary['platform']}: removed {summary['removed']} resources"
              + (f", {len(failures)} could not be removed:" if failures else ""))
        for failure in failures:
            print(f"  {failure}")
        failed += bool(failures)
    if not summaries:
        print(f"{prefix}no platform recorded under {where}")
    return failed


def _selected_pnodes(args: argparse.Namespace, default_nodefile: bool = False) -> list[Any]:
    """The pnodes named by --pnode and -f (with ``default_nodefile``, $OAR_NODEFILE when neither is given)."""
    from ..platform.pnodes import as_pnodes, read_nodefile

    nodefile = args.nodefile or (None if args.pnode or not default_nodefile else "")
    hosts = list(args.pnode or []) + (read_nodefile(nodefile or None) if nodefile is not None else [])
    return as_pnodes(hosts, args.state_dir, None, args.ssh_config)


def _clean_pnodes(args: argparse.Namespace) -> int:
    """Clean other pnodes through a fresh gateway each (the agent's clean, run there)."""
    from ..errors import DistemError
    from ..platform.session import clean_remotely

    try:
        pnodes = _selected_pnodes(args)
    except DistemError as exc:
        print(f"distem clean: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for pnode in pnodes:
        try:
            result = clean_remotely(pnode, args.platform)
        except DistemError as exc:
            print(f"{pnode.name}: {exc}")
            failed += 1
            continue
        failed += _report(result if isinstance(result, list) else [result], pnode.state_dir, f"{pnode.name}: ")
    return 1 if failed else 0


def _held(state_dir: str, platform_id: str) -> dict[str, Any]:
    """What the journal of a platform on this pnode says: what it holds, and whether its agent still
    runs attached to a controller (a notebook, `distem up`: in use) or orphaned (its controller gone)."""
    from ..agent import undo
    from ..agent.journal import Journal
    from ..agent.system import process_parent, process_start_time

    journal = Journal(f"{state_dir}/platforms/{platform_id}/{undo.JOURNAL}")
    entries = journal.entries()
    journal.close()
    kinds: dict[str, int] = {}
    for entry in entries:
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    agents = [e for e in entries if e["kind"] == "process" and e.get("role", "agent") == "agent"
              and process_start_time(e["pid"]) == e["start"]]
    attached = any(process_parent(e["pid"]) not in (None, 1) for e in agents)
    return {"kinds": kinds, "agent": agents[0]["pid"] if agents else None, "in_use": attached}


def _describe(state_dir: str, platform_id: str) -> str:
    held = _held(state_dir, platform_id)
    state = (f"in use (agent {held['agent']} attached to its controller)" if held["in_use"]
             else f"orphaned (agent {held['agent']} left running)" if held["agent"] else "no agent")
    what = ", ".join(f"{n} {k}" for k, n in sorted(held["kinds"].items())) or "nothing"
    kept = default_records_dir() / platform_id / "record.json"
    source = json.loads(kept.read_text()).get("source") if kept.is_file() else None
    return f"platform {platform_id}: {state}; holds {what}" + (f"; from {source}" if source else "")


def _clean(args: argparse.Namespace) -> int:
    if args.pnode or args.nodefile:
        return _clean_pnodes(args)
    from ..agent import undo  # runs the agent's own code, here, as root

    if args.platform:
        ids = [args.platform]
    else:  # never a platform someone is using, unless asked by its id or with --force
        ids, kept = [], []
        for pid in undo.platforms(args.state_dir):
            (kept if _held(args.state_dir, pid)["in_use"] and not args.force else ids).append(pid)
        for pid in kept:
            print(f"kept: {_describe(args.state_dir, pid)} (distem clean --platform {pid} or --force removes it)")
        if kept and not ids:
            return 0
        if ids:
            print("will remove:\n" + "\n".join(f"  {_describe(args.state_dir, pid)}" for pid in ids), flush=True)
            if sys.stdin.isatty() and not args.yes and input("remove them? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing removed")
                return 1
    return 1 if _report([undo.clean(args.state_dir, pid) for pid in ids], args.state_dir) else 0


def _status(args: argparse.Namespace) -> int:
    from ..agent import undo

    ids = undo.platforms(args.state_dir)
    for pid in ids:
        print(_describe(args.state_dir, pid))
    if not ids:
        print(f"no platform recorded under {args.state_dir}")
    for home in sorted(default_records_dir().glob(f"*/{HOLDER}")):
        holder = json.loads(home.read_text())
        if process_running(holder["pid"]):
            doc = json.loads((home.parent / "platform.json").read_text())
            print(f"up: platform {home.parent.name} from {holder['file']}, held by pid {holder['pid']}: "
                  f"{len(doc['vnodes'])} vnodes ({', '.join(v['name'] for v in doc['vnodes'][:8])}"
                  f"{', ...' if len(doc['vnodes']) > 8 else ''}) on {', '.join(p['name'] for p in doc['pnodes'])}; "
                  f"record {home.parent}")
    return 0


# -- up, down, record, diff ---------------------------------------------------------------------

def _up(args: argparse.Namespace) -> int:
    from ..errors import DistemError
    from ..platform.platform import Platform

    try:
        platform = Platform.from_record(args.file, state_dir=args.state_dir)
    except DistemError as exc:
        print(f"distem up: {exc}", file=sys.stderr)
        return 1
    home = default_records_dir() / platform.id
    stop, write = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: write.set())  # `distem record ID`
    try:
        platform.record(home)
        (home / HOLDER).write_text(json.dumps({"pid": os.getpid(), "file": str(args.file), "since": time.time()}))
        running = sum(1 for s in platform.model.status.values() if s == "RUNNING")
        print(f"platform {platform.id} is up: {len(platform.model.vnodes)} vnodes ({running} running) on "
              f"{', '.join(platform.model.pnodes)}; record {home}; stop it with: distem down {platform.id}", flush=True)
        while not stop.wait(0.2):
            if write.is_set():
                write.clear()
                platform.record(home)
                print(f"record written: {home}", flush=True)
        platform.record(home)
    finally:
        (home / HOLDER).unlink(missing_ok=True)
        platform.close()
    print(f"platform {platform.id} is down", flush=True)
    return 0


def _kept(ident: str) -> Path:
    """A record directory: a path, or the id of a record kept in default_records_dir()."""
    path = Path(ident)
    return path if (path / "record.json").is_file() else default_records_dir() / ident


def _holder(platform_id: str) -> int | None:
    path = default_records_dir() / platform_id / HOLDER
    if not path.is_file():
        return None
    pid = int(json.loads(path.read_text())["pid"])
    return pid if process_running(pid) else None


def _down(args: argparse.Namespace) -> int:
    ident = args.platform
    if ident is None:
        held = [p.parent.name for p in default_records_dir().glob(f"*/{HOLDER}") if _holder(p.parent.name)]
        if len(held) != 1:
            print("distem down: " + (f"say which: {', '.join(held)}" if held else "no platform is up"),
                  file=sys.stderr)
            return 2
        ident = held[0]
    pid = _holder(ident)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while process_running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_running(pid):
            print(f"distem down: pid {pid} still holds {ident} after {args.timeout} s", file=sys.stderr)
            return 1
        print(f"platform {ident} is down")
        return 0
    # no `distem up` holds it (killed?): clean it from the journals of the pnodes its record names
    record = _kept(ident) / "platform.json"
    pnodes = json.loads(record.read_text()).get("pnodes", []) if record.is_file() else []
    remote = [p["spec"] for p in pnodes if p.get("spec") not in (None, "popen")]
    args.platform, args.pnode, args.nodefile, args.ssh_config = ident, remote, None, None
    if remote:
        return _clean_pnodes(args)
    from ..agent import undo

    return 1 if _report([undo.clean(args.state_dir, ident)], args.state_dir) else 0


def _record(args: argparse.Namespace) -> int:
    home = default_records_dir() / args.platform
    pid = _holder(args.platform)
    if pid is not None:
        before = (home / "record.json").stat().st_mtime_ns
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + args.timeout
        while (home / "record.json").stat().st_mtime_ns == before:
            if time.monotonic() > deadline:
                print(f"distem record: pid {pid} wrote no record in {args.timeout} s", file=sys.stderr)
                return 1
            time.sleep(0.1)
    elif not (home / "record.json").is_file():
        print(f"distem record: no record of platform {args.platform} under {default_records_dir()}", file=sys.stderr)
        return 2
    if args.directory:
        shutil.copytree(home, args.directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns(HOLDER))
    print(args.directory or home)
    return 0


def _diff(args: argparse.Namespace) -> int:
    from ..errors import DistemError
    from ..platform.records import diff

    try:
        differences = diff(_kept(args.a), _kept(args.b))
    except DistemError as exc:
        print(f"distem diff: {exc}", file=sys.stderr)
        return 2
    values = [d for d in differences if d.kind == "value"]
    for d in values + ([d for d in differences if d.kind != "value"] if args.all else []):
        print(d)
    kinds = {k: sum(1 for d in differences if d.kind == k) for k in ("value", "time", "id")}
    print(f"{kinds['value']} differences" + (f" (and {kinds['time']} times, {kinds['id']} ids: --all shows them)"
                                            if kinds["time"] + kinds["id"] and not args.all else ""))
    return 1 if values else 0


def _demo(args: argparse.Namespace) -> int:
    from ..errors import DistemError
    from .demo import PLATFORM_FILE, run

    try:
        run(state_dir=args.state_dir, file=args.file or PLATFORM_FILE, record=args.record)
    except DistemError as exc:
        print(f"distem demo: {exc}", file=sys.stderr)
        return 1
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    from ..errors import DistemError
    from ..platform.bootstrap import bootstrap

    try:
        done = bootstrap(_selected_pnodes(args, default_nodefile=True), state_dir=args.state_dir,
                         ssh_config=args.ssh_config, debian_version=args.debian_version, images=args.image or (),
                         btrfs_format=args.btrfs_format)
    except DistemError as exc:
        print(f"distem bootstrap: {exc}", file=sys.stderr)
        return 1
    print(done.to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distem", description="Emulate distributed platforms with LXC vnodes.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (("up", _up, "make the platform of a platform file (YAML or JSON), record it, hold it "
                                         "until `distem down` or Ctrl-C"),
                             ("down", _down, "stop a platform `distem up` holds (or clean it from its journals)"),
                             ("record", _record, "write the record of a platform `distem up` holds"),
                             ("diff", _diff, "what differs between two records (directories, or ids of kept "
                                             "records); exit 1 when more than times and ids differ"),
                             ("clean", _clean, "remove what platforms left on this pnode (Distem's distem -q); "
                                               "a platform in use is kept unless named or --force"),
                             ("status", _status, "the platforms recorded on this pnode, and those `distem up` holds"),
                             ("demo", _demo, "a small degraded platform here: asked against measured, a "
                                             "heatmap, the record; then removed"),
                             ("bootstrap", _bootstrap, "prepare pnodes over ssh: packages, the agent's Python, "
                                                       "images, btrfs (Distem's distem-bootstrap)")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help=f"default {DEFAULT_STATE_DIR}")
        cmd.set_defaults(func=func)
        if name in ("clean", "bootstrap"):
            cmd.add_argument("--pnode", action="append", metavar="SPEC",
                             help="a pnode (a host name or an execnet spec); repeatable"
                                  + (" (default: this machine)" if name == "clean" else ""))
            cmd.add_argument("-f", "--nodefile", help="the pnodes of this OAR node file"
                             + (" (default: $OAR_NODEFILE)" if name == "bootstrap" else ""))
            cmd.add_argument("--ssh-config", help="an ssh config file for the pnodes' ssh connections")
        if name == "clean":
            cmd.add_argument("--platform", help="only this platform id (default: every platform recorded and "
                                                "not in use)")
            cmd.add_argument("--force", action="store_true", help="also the platforms in use (their controller runs)")
            cmd.add_argument("-y", "--yes", action="store_true", help="do not ask (asked only on a terminal)")
        if name == "up":
            cmd.add_argument("file", help="a platform file (YAML or JSON), or a record directory to bring up again")
        if name in ("down", "record"):
            cmd.add_argument("platform", nargs=None if name == "record" else "?", metavar="ID",
                             help="the platform's id" + (" (default: the only one up)" if name == "down" else ""))
            cmd.add_argument("--timeout", type=float, default=120, help="seconds to wait (default 120)")
        if name == "record":
            cmd.add_argument("directory", nargs="?", help="copy the record there too")
        if name == "diff":
            cmd.add_argument("a", help="a record directory, or a kept record's id")
            cmd.add_argument("b")
            cmd.add_argument("--all", action="store_true", help="also the times and ids that differ")
        if name == "bootstrap":
            cmd.add_argument("--debian-version", help="also build and send a Debian image (e.g. bookworm)")
            cmd.add_argument("--image", action="append", metavar="TARBALL", help="send this image; repeatable")
            cmd.add_argument("--btrfs-format", metavar="DEVICE",
                             help="a btrfs filesystem on this whole device, at STATE_DIR/btrfs (for cow: 'btrfs')")
        if name == "demo":
            cmd.add_argument("--file", help="another platform file with vnodes eu-1, eu-2 and us-1 "
                                            "(default: the demo's, distem/frontends/demo.yml)")
            cmd.add_argument("--record", metavar="DIR", help="where to write the run's record (default: kept records)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
