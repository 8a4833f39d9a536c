"""Charts of the economics figures, drawn offline with matplotlib's Agg backend.

Deterministic: SVG text is kept as paths with a fixed hash salt and no date in the
metadata, PNG carries no date or software metadata, so the same figures give the same bytes.
Plot values are display-only conversions of the exact figures (never fed back).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from payoff.core.errors import Refused
from payoff.extras import needs

with needs("charts", "Drawing charts (--chart, payoff demo)"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

SUFFIXES = (".png", ".svg")
HASH_SALT = "payoff"


class ChartError(Refused, ValueError):
    """A chart path payoff cannot write."""


def _check(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise ChartError(f"--chart: a .png or .svg file, got {str(path)!r}")
    if not path.parent.is_dir():
        raise ChartError(f"--chart: no folder {str(path.parent)!r}")


def _save(figure: Any, path: Path) -> Path:
    _check(path)
    figure.tight_layout()
    with matplotlib.rc_context({"svg.hashsalt": HASH_SALT, "svg.fonttype": "path"}):
        if path.suffix.lower() == ".svg":
            figure.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
        else:
            figure.savefig(path, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)
    return path


def _number(text: str | None) -> Decimal:
    return Decimal(0) if text is None else Decimal(text)


def _bars(axes: Any, labels: Sequence[str], series: dict[str, Sequence[Decimal]]) -> None:
    width = 0.8 / max(1, len(series))
    for index, (name, values) in enumerate(series.items()):
        positions = [x + index * width for x in range(len(labels))]
        # Display only: the figures stay exact; the chart needs screen coordinates.
        axes.bar(positions, [float(v) for v in values], width, label=name)
    axes.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))])
    axes.set_xticklabels(labels, rotation=15, ha="right")
    axes.legend()


def money_chart(simulation: dict[str, Any], path: Path) -> Path:
    """Revenue, cost and margin (USD) per plan, in the baseline scenario."""
    base = simulation["scenarios"][0]["plans"]
    labels = list(base)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _bars(
        axes,
        labels,
        {key: [_number(base[p][key]) for p in labels] for key in ("revenue", "cost", "margin")},
    )
    axes.set_ylabel("USD")
    axes.set_title(f"Revenue, cost and margin per plan, {simulation['period']}")
    return _save(figure, path)


def risk_chart(simulation: dict[str, Any], path: Path) -> Path:
    """Customer risk against provider risk per plan, in the baseline scenario."""
    base = simulation["scenarios"][0]["plans"]
    labels = list(base)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _bars(
        axes,
        labels,
        {
            key: [_number(base[p][key]) for p in labels]
            for key in ("customer_risk", "provider_risk")
        },
    )
    axes.set_ylim(0, 1)
    axes.set_ylabel("share")
    axes.set_title(f"Customer risk and provider risk per plan, {simulation['period']}")
    return _save(figure, path)


def tokens_chart(report: dict[str, Any], path: Path) -> Path:
    """Visible and hidden tokens per agent type (rows of a report by task type)."""
    rows = report["rows"]
    labels = [row["key"] for row in rows]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _bars(
        axes,
        labels,
        {
            "visible tokens": [Decimal(row["visible_tokens"]) for row in rows],
            "hidden tokens": [Decimal(row["hidden_tokens"]) for row in rows],
        },
    )
    axes.set_ylabel("tokens")
    axes.set_title(f"Visible and hidden tokens per agent type, {report['period']}")
    return _save(figure, path)


def simulation_chart(simulation: dict[str, Any], path: Path) -> Path:
    """Both simulation charts in one file: money per plan beside risks per plan."""
    _check(path)
    base = simulation["scenarios"][0]["plans"]
    labels = list(base)
    figure, (money, risk) = plt.subplots(1, 2, figsize=(13, 4.5))
    keys = ("revenue", "cost", "margin")
    _bars(money, labels, {k: [_number(base[p][k]) for p in labels] for k in keys})
    money.set_title("Revenue, cost, margin (USD)")
    risks = ("customer_risk", "provider_risk")
    _bars(risk, labels, {k: [_number(base[p][k]) for p in labels] for k in risks})
    risk.set_ylim(0, 1)
    risk.set_title("Customer risk, provider risk")
    return _save(figure, path)
