"""The ``distem`` command: ``demo``, ``status``, ``clean`` (Distem's ``distem -q``; here, or on other
pnodes with ``--pnode SPEC`` / ``-f NODEFILE``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ..platform.platform import DEFAULT_STATE_DIR


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


def _clean(args: argparse.Namespace) -> int:
    if args.pnode or args.nodefile:
        return _clean_pnodes(args)
    from ..agent import undo  # runs the agent's own code, here, as root

    ids = [args.platform] if args.platform else undo.platforms(args.state_dir)
    return 1 if _report([undo.clean(args.state_dir, pid) for pid in ids], args.state_dir) else 0


def _status(args: argparse.Namespace) -> int:
    from ..agent import undo
    from ..agent.journal import Journal
    from ..agent.system import process_start_time

    ids = undo.platforms(args.state_dir)
    for pid in ids:
        journal = Journal(f"{args.state_dir}/platforms/{pid}/{undo.JOURNAL}")
        kinds: dict[str, int] = {}
        for entry in journal.entries():
            kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
        journal.close()
        alive = [e for e in journal.entries() if e["kind"] == "process"
                 and process_start_time(e["pid"]) == e["start"]]
        print(f"platform {pid}: {'agent running' if alive else 'no agent (clean it with: distem clean)'}; "
              + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    if not ids:
        print(f"no platform recorded under {args.state_dir}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    run(vnodes=args.vnodes, state_dir=args.state_dir)
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
    for name, func, text in (("clean", _clean, "remove what platforms created on this pnode (Distem's distem -q)"),
                             ("status", _status, "list the platforms recorded on this pnode"),
                             ("demo", _demo, "deploy a small platform here, measure it, clean up"),
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
            cmd.add_argument("--platform", help="only this platform id (default: every platform recorded)")
        if name == "bootstrap":
            cmd.add_argument("--debian-version", help="also build and send a Debian image (e.g. bookworm)")
            cmd.add_argument("--image", action="append", metavar="TARBALL", help="send this image; repeatable")
            cmd.add_argument("--btrfs-format", metavar="DEVICE",
                             help="a btrfs filesystem on this whole device, at STATE_DIR/btrfs (for cow: 'btrfs')")
        if name == "demo":
            cmd.add_argument("--vnodes", type=int, default=4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
