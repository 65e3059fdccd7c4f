"""Running an image build's long commands (debootstrap, apt-get in a chroot).

Each runs in a mount and PID namespace of its own, so whatever it mounts or starts ends with it, even
when it is killed; its output is kept in a log and read as it comes for a progress bar; and when it
fails, the lines that say why (and the packages they blame) go into the error.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError
from .store import ImageError

log = logging.getLogger(__name__)

PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")  # Debian policy, 5.6.1
# setpriv: unshare dies with the Python that started it (killed, not only interrupted); --kill-child: the
# command (PID 1 of the namespace) dies with unshare, and all it started with it.
NAMESPACE = ("setpriv", "--pdeathsig", "KILL", "unshare", "--mount", "--propagation", "private", "--pid", "--fork",
             "--kill-child")
STEPS_PER_PACKAGE = 3  # fetched, unpacked, configured


def check_packages(field_name: str, packages: Sequence[str]) -> tuple[str, ...]:
    """The package names, without repeats, in the order given.

    Raises:
        ValidationError: a single string, or a name Debian would not accept (versions and releases included).
    """
    if isinstance(packages, (str, bytes)):
        raise ValidationError(field_name, packages, "a list of package names, e.g. ['iperf3']")
    for name in packages:
        if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
            raise ValidationError(field_name, name, "a Debian package name: lower-case letters, digits, "
                                                    "'+', '-' and '.' (no version or release)")
    return tuple(dict.fromkeys(packages))


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRules:
    """How one tool says what it does.

    ``steps`` match a package's step (groups ``verb`` and ``package``); ``verbs`` names the stage of each verb,
    and those in ``uncounted`` show without counting. ``total`` matches the line after which the number of
    packages is known: its group ``n``, or else the packages fetched so far. ``stage`` matches any other line
    naming what the tool does (group ``stage``).
    """

    steps: tuple[re.Pattern[str], ...]
    verbs: Mapping[str, str]
    uncounted: frozenset[str] = frozenset()
    total: re.Pattern[str]
    stage: re.Pattern[str] | None = None


DEBOOTSTRAP_STEPS = StepRules(
    # Retrieving adduser 3.134 / Extracting adduser... / Unpacking libc6:amd64... / Configuring libc6...
    steps=(re.compile(r"I: (?P<verb>Retrieving|Extracting|Unpacking|Configuring) (?P<package>[a-z0-9][a-z0-9+.-]+)"
                      r"(?::[a-z0-9-]+)?(?: (?=\d)\S+|\.\.\.)$"),),
    verbs={"Retrieving": "retrieving", "Extracting": "extracting", "Unpacking": "unpacking",
           "Configuring": "configuring"},
    uncounted=frozenset({"Extracting"}),  # only the required packages, quickly: their unpacking is counted later
    total=re.compile(r"I: (?:Chosen extractor|Extracting|Installing core packages)"),
    stage=re.compile(r"I: (?!Validating )(?P<stage>.+?)(?:\.\.\.)?\s*$"),
)

APT_STEPS = StepRules(
    steps=(re.compile(r"(?P<verb>Get):\d+ \S+ \S+ (?:\S+ )?(?P<package>[a-z0-9][a-z0-9+.-]+) \S+ \S+ \["),  # a .deb
           re.compile(r"(?P<verb>Unpacking|Setting up) (?P<package>[a-z0-9][a-z0-9+.-]+)[: ]")),
    verbs={"Get": "fetching", "Unpacking": "unpacking", "Setting up": "configuring"},
    total=re.compile(r"\d+ upgraded, (?P<n>\d+) newly installed"),
    stage=re.compile(r"(?P<stage>Reading package lists|Building dependency tree|Processing triggers)"),
)


@dataclass(slots=True)
class Steps:
    """What a tool's output has said so far: the stage, the steps done, their total once known."""

    rules: StepRules
    stage: str = "starting"
    headline: str = "starting"  # the stage without the package, to log only when it changes
    done: int = 0
    total: int | None = None

    def feed(self, line: str) -> bool:
        """Read one line of output; True if it changed what a progress bar shows."""
        step = next(filter(None, (pattern.match(line) for pattern in self.rules.steps)), None)
        if step:
            self.headline = self.rules.verbs[step["verb"]]
            self.stage = f"{self.headline} {step['package']}"
            self.done += step["verb"] not in self.rules.uncounted
            return True
        total = self.rules.total.match(line)
        if total and self.total is None:
            packages = int(total["n"]) if total.groupdict().get("n") else self.done
            self.total = STEPS_PER_PACKAGE * packages
        stage = self.rules.stage.match(line) if self.rules.stage else None
        if stage:
            self.stage = self.headline = stage["stage"]
        return bool(total or stage)


def run_build(argv: Sequence[str], rules: StepRules, label: str, output: Path, progress: bool | None) -> int:
    """Run ``argv`` in a namespace of its own, its output (stdout and stderr) written to ``output`` and shown
    as a progress bar labelled ``label`` (``progress``: None shows it on a terminal or in a notebook only).

    Returns:
        The exit status. Interrupted, the command is killed, and with it all it started and mounted.
    """
    from ..platform.progress import Progress  # loads the platform's modules: only when a build really runs

    for tool in NAMESPACE[0], NAMESPACE[3]:
        if shutil.which(tool) is None:
            raise ImageError(f"{tool} not found: apt-get install util-linux (a build runs in a namespace of its own)")
    steps, started = Steps(rules), time.monotonic()
    with Progress(label, None, progress, unit="step") as bar, open(output, "w") as kept, subprocess.Popen(
            [*NAMESPACE, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            start_new_session=True) as proc:
        assert proc.stdout is not None
        kept.write(f"$ {shlex.join(argv)}\n")
        try:
            for line in proc.stdout:
                kept.write(line)
                headline = steps.headline
                if steps.feed(line.rstrip()):
                    bar.count(steps.done, steps.total, steps.stage)
                if steps.headline != headline:
                    log.info("%s: %s (%d/%s steps, %.0f s)", label, steps.headline, steps.done,
                             steps.total or "?", time.monotonic() - started)
            status = proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        if status == 0:
            bar.count(steps.total or steps.done, steps.total or steps.done, "done")
    return status


_BLAME = (
    re.compile(r"possibly the package (\S+) is at fault"),  # debootstrap, from dpkg's error
    re.compile(r"Couldn't find these debs: (.+)"),  # debootstrap: not in the archive
    re.compile(r"Couldn't download packages?: (.+)"),  # debootstrap
    re.compile(r"dpkg: error processing (?:package|archive) (\S+)"),
    re.compile(r"E: Unable to locate package (\S+)"),  # apt
    re.compile(r"E: Package '([^']+)' has no installation candidate"),  # apt
)


def blamed_packages(text: str) -> tuple[str, ...]:
    """The packages a tool's output names as the cause of its failure, in order, without repeats."""
    names = []
    for pattern in _BLAME:
        for match in pattern.finditer(text):
            for name in match[1].split():
                if name.endswith(".deb"):  # dpkg names the archive: /var/cache/apt/archives/NAME_VERSION_ARCH.deb
                    name = Path(name).name.split("_")[0]
                names.append(name.split(":")[0])
    return tuple(dict.fromkeys(names))


def relevant_lines(output: str, inner_log: str, packages: Sequence[str], tail: int = 20) -> list[str]:
    """What to show of a failure: the tool's errors and warnings, the last lines naming a blamed package,
    then the last ``tail`` lines of its inner log (or of its output when it has none), each once."""
    said = [line for line in output.splitlines() if line.startswith(("E:", "W:"))]
    naming = re.compile("|".join(rf"(?<![\w+.-]){re.escape(p)}(?![\w+-])" for p in packages)) if packages else None
    both = output.splitlines() + inner_log.splitlines()
    named = [line for line in both if naming and naming.search(line)][-10:]
    last = (inner_log or output).splitlines()[-tail:]
    return list(dict.fromkeys(line for line in said + named + last if line.strip()))


def build_failure(what: str, status: int, output: str, inner_log: str, kept: Path) -> ImageError:
    """The error for a failed build, whose whole log (``output``, then ``inner_log``) is kept at ``kept``."""
    packages = blamed_packages(output + "\n" + inner_log)
    names = f"; it blames the package{'s' * (len(packages) > 1)} {', '.join(packages)}" if packages else ""
    shown = "\n".join(f"  | {line}" for line in relevant_lines(output, inner_log, packages))
    return ImageError(f"{what} failed (exit status {status}){names}:\n{shown}\n"
                      f"The whole log: {kept} (kept until this image is tried again)", log=kept, packages=packages)


def keep_failure(what: str, status: int, output: Path, inner_log: Path | None, kept: Path) -> ImageError:
    """Keep a failed build's log at ``kept`` (the inner log appended, its old path pointed at ``kept``),
    and return the error that explains it."""
    text = output.read_text(errors="replace")
    inner = inner_log.read_text(errors="replace") if inner_log is not None and inner_log.is_file() else ""
    if inner_log is not None:
        text = text.replace(str(inner_log), str(kept))  # the build's directory is about to go
    kept.write_text(text + (f"\n--- {inner_log.name if inner_log else ''} ---\n{inner}" if inner else ""))
    return build_failure(what, status, text, inner, kept)
