"""The reliability checks' sizes, what they have measured, and what is known to fail.

The crash harness, the record fuzzer, the schemathesis runs and the hostile-body probes run
in two forms. The bounded form is part of `make test` (seconds each). The long form is
`make reliability`: PAYOFF_RELIABILITY=long raises every size (each can also be set alone,
see SIZES), counts wrong results instead of stopping at the first, and appends the figures
of each check to the JSON Lines file named by PAYOFF_RELIABILITY_RESULTS. Run as a script,
this module turns that file into the markdown table docs/RELIABILITY.md quotes:

    python tests/reliability.py results.jsonl > docs/reliability-results.md

KNOWN_BROKEN names the checks that fail today, each with what goes wrong. Their tests are
marked xfail(strict=True): they must fail, and the day a fix makes one pass the suite says
so, and the entry is removed here. None is listed today.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

LONG = os.environ.get("PAYOFF_RELIABILITY") == "long"
RESULTS = os.environ.get("PAYOFF_RELIABILITY_RESULTS")

SIZES = {
    # name: (bounded, long); PAYOFF_<NAME> overrides either.
    "CRASH_INGEST_KILLS": (3, 40),
    "CRASH_INGEST_RECORDS": (10_500, 30_000),
    "CRASH_SERVE_KILLS": (2, 25),
    "CRASH_WORKERS_KILLS": (1, 5),
    "ADMIN_LOAD_SECONDS": (2, 20),
    "FUZZ_EXAMPLES": (25, 1_000),
    "HOSTILE_BODY_EXAMPLES": (25, 400),
    "SCHEMATHESIS_EXAMPLES": (25, 150),
    "SCHEMATHESIS_SCOPE_EXAMPLES": (3, 40),
    "MEMORY_BODY_MIB": (4, 32),
}


def size(name: str) -> int:
    bounded, long = SIZES[name]
    given = os.environ.get(f"PAYOFF_{name}")
    return int(given) if given else (long if LONG else bounded)


KNOWN_BROKEN: dict[str, str] = {}


def known_broken(name: str) -> pytest.MarkDecorator:
    """xfail(strict) while `name` is in KNOWN_BROKEN; a plain pass-through mark after."""
    if name in KNOWN_BROKEN:
        return pytest.mark.xfail(strict=True, reason=KNOWN_BROKEN[name])
    return pytest.mark.usefixtures()


# -- wrong results, counted or raised -----------------------------------------------------

MAX_REPRODUCERS = 5
SHOWN = 2
"""Distinct problems of a check shown in the markdown page (the results file keeps more)."""


@dataclass
class Tally:
    """Inputs tried and wrong results of one check, with the first reproducers.

    In the bounded form the first wrong result raises; in the long form they are counted
    and the check fails at its end. Either way the first few are kept with a reproducer.
    """

    check: str
    tried: int = 0
    """Examples (streams, requests) tried."""
    inputs: int = 0
    """Records or requests inside them."""
    wrong: int = 0
    reproducers: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def example(
        self,
        inputs: int,
        problems: list[str],
        reproducer: Callable[[], tuple[list[str], str]],
    ) -> None:
        """Count one example; `reproducer` gives the problems and a description of the
        smallest example found to have them (called only for the first few failures)."""
        with self.lock:
            self.tried += 1
            self.inputs += inputs
            if not problems:
                return
            self.wrong += 1
            keep = len(self.reproducers) < MAX_REPRODUCERS
        if not keep and LONG:
            return
        problems, described = reproducer()
        text = "\n  ".join([*problems[:10], f"reproducer: {described[:4000]}"])
        with self.lock:
            if len(self.reproducers) < MAX_REPRODUCERS:
                self.reproducers.append(text)
        if not LONG:
            raise AssertionError(text)

    def close(self, guarantee: str, *, known: str | None = None, **figures: Any) -> None:
        """Record the figures, then fail if anything was wrong."""
        counts = {"tried": self.tried, "inputs": self.inputs, "wrong": self.wrong}
        record(self.check, guarantee, {**counts, **figures}, self.reproducers, known=known)
        assert self.wrong == 0, f"{self.wrong} wrong of {self.tried}:\n" + "\n".join(
            self.reproducers
        )


def record(
    check: str,
    guarantee: str,
    figures: dict[str, Any],
    problems: list[str],
    *,
    known: str | None = None,
) -> None:
    """Append one check's figures to the results file, when one is named; `known` is the
    KNOWN_BROKEN entry the check stands for, if any."""
    if not RESULTS:
        return
    line = {
        "check": check,
        "guarantee": guarantee,
        "known_broken": known in KNOWN_BROKEN,
        "figures": figures,
        "problems": problems[:MAX_REPRODUCERS],
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
    }
    with open(RESULTS, "a", encoding="utf-8") as results:
        results.write(json.dumps(line) + "\n")


# -- the results as markdown ---------------------------------------------------------------


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def _figures(figures: dict[str, Any]) -> str:
    def shown(name: str, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and name != "seed":
            return f"{name} {value:,}"
        return f"{name} {value}"

    return ", ".join(shown(name, value) for name, value in figures.items())


def _distinct(problems: list[str]) -> list[str]:
    """Each problem once, with how many times it came."""
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem] = counts.get(problem, 0) + 1
    return [p if n == 1 else f"{p} (x{n})" for p, n in counts.items()]


def table(lines: list[dict[str, Any]]) -> str:
    """The results as a markdown page: a table of every check, then the problems found."""
    first = lines[0] if lines else {}
    out = [
        "# Reliability results",
        "",
        f"`make reliability` at {first.get('commit', _commit())}, {first.get('at', 'no results')}.",
        "Generated from the long form's results file; docs/RELIABILITY.md quotes it.",
        "",
        "| check | guarantee | result | figures |",
        "|---|---|---|---|",
    ]
    for line in lines:
        failed = bool(line["problems"]) or line["figures"].get("wrong", 0) > 0
        result = "holds" if not failed else "**fails**"
        if failed and line["known_broken"]:
            result += " (known)"
        out.append(
            f"| {line['check']} | {line['guarantee']} | {result} | {_figures(line['figures'])} |"
        )
    found = [line for line in lines if line["problems"]]
    if found:
        out += ["", "## What failed, with reproducers", ""]
        for line in found:
            out += [f"### {line['check']}", "", "```"]
            out += [problem[:1500] for problem in _distinct(line["problems"])[:SHOWN]]
            out += ["```", ""]
    return "\n".join(out).rstrip() + "\n"


def main(path: str) -> None:
    lines = [json.loads(text) for text in Path(path).read_text().splitlines() if text.strip()]
    sys.stdout.write(table(lines))


if __name__ == "__main__":
    main(sys.argv[1])
