"""Simulating 4 plans x 5 scenarios, against one plain invoice run.

Both run in process on the same cached ledger as the rating benchmark (bench/rating.py):
payoff's side is one `simulate` of the month with four plans and the demo's five scenarios,
as the command runs it: the baseline always comes first, so it prices 4 x 6 = 24 plan and
scenario combinations (SQL buckets and task facts, every customer priced on each plan under
each scenario, attributed to tasks). The yardstick is one `invoice run` of the same month,
measured in the same run, alternating.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import rating
from bench.workload import MONTH
from payoff.catalog import Catalog
from payoff.demo import DEMO_SCENARIOS
from payoff.service import economics
from payoff.store import open_store

PLAN_NAMES = ("cost-plus", "per-task", "per-outcome", "hybrid")
RATIO_MAX = 20


@dataclass(frozen=True)
class EconomicsResult:
    events: int
    plans: int
    scenarios: int  # named scenarios; the baseline comes on top
    simulate_seconds: list[float]
    invoice_seconds: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.simulate_seconds) / statistics.median(self.invoice_seconds)

    @property
    def combinations(self) -> int:
        """Plan and scenario pairs the command prices: the baseline's included."""
        return self.plans * (self.scenarios + 1)

    @property
    def ratio_per_combination(self) -> float:
        return self.ratio / self.combinations


def simulate_seconds(path: Path, as_of_us: int) -> float:
    plans = economics.load_plans([rating.PLANS / f"{name}.yaml" for name in PLAN_NAMES])
    scenarios = economics.parse_scenarios(list(DEMO_SCENARIOS))
    store = open_store(path)
    start = time.perf_counter()
    result = economics.simulate(store, MONTH, plans, scenarios, Catalog(), as_of_us=as_of_us)
    seconds = time.perf_counter() - start
    store.close()
    assert len(result["scenarios"]) == len(scenarios)
    return seconds


def measure(events: int, repeats: int, log: Any = print) -> EconomicsResult:
    path, as_of_us = rating.ledger(events, log)
    simulated, invoiced = [], []
    for repeat in range(1, repeats + 1):
        invoiced.append(rating.payoff_seconds(path, as_of_us))
        simulated.append(simulate_seconds(path, as_of_us))
        log(
            f"  repeat {repeat}/{repeats}: simulate {simulated[-1]:.2f} s, "
            f"invoice run {invoiced[-1]:.2f} s"
        )
    return EconomicsResult(events, len(PLAN_NAMES), len(DEMO_SCENARIOS), simulated, invoiced)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.economics")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--write", action="store_true", help="replace the economics section of bench/RESULTS.md"
    )
    args = parser.parse_args()
    found = measure(args.records, args.repeats)
    print(
        f"simulate {statistics.median(found.simulate_seconds):.2f} s, invoice run "
        f"{statistics.median(found.invoice_seconds):.2f} s, ratio {found.ratio:.2f}x "
        f"(target <= {RATIO_MAX}x), {found.ratio_per_combination:.2f}x per plan and scenario"
    )
    if args.write:
        from bench.run import write_economics_section

        print(f"wrote {write_economics_section(found)}")
