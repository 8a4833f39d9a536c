"""Charts of the economics figures, drawn offline with matplotlib's Agg backend.

Deterministic: SVG text is kept as paths with a fixed hash salt and no date in the
metadata, PNG carries no date or software metadata, so the same figures give the same bytes.
Plot values are display-only conversions of the exact figures (never fed back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from payoff.core.errors import Refused
from payoff.extras import needs

with needs("charts", "Drawing charts (--chart, payoff demo)"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter, StrMethodFormatter

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


GROUP_NAMES = {"customer": "customer", "plan": "plan", "task_type": "agent type", "model": "model"}
"""How a chart title says what the rows of a report are (its `--by`)."""
RISK_NAMES = {
    "customer_risk": "Customer risk: spend without a verified outcome",
    "provider_risk": "Provider risk: cost that earned nothing",
}


def _bars(
    axes: Any,
    labels: Sequence[str],
    series: Mapping[str, Sequence[Decimal]],
    legend: bool = True,
    values: str | None = None,
) -> None:
    """Grouped bars; `values` (a format) writes each bar's value on it, so that a bar too
    small to see against the others (a cost-plus revenue beside outcome revenue) or one at
    zero still says what it is."""
    width = 0.8 / max(1, len(series))
    for index, (name, amounts) in enumerate(series.items()):
        positions = [x + index * width for x in range(len(labels))]
        # Display only: the figures stay exact; the chart needs screen coordinates.
        bars = axes.bar(positions, [float(v) for v in amounts], width, label=name)
        if values is not None:
            axes.bar_label(bars, fmt=values, fontsize=8, padding=2)
    axes.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))])
    axes.set_xticklabels(labels, rotation=30, ha="right")
    axes.margins(y=0.12)  # room for the values above the highest bar
    axes.axhline(0, color="#444444", linewidth=0.8)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    if legend:
        axes.legend(frameon=False)


def _amounts(axes: Any, label: str) -> None:
    """A y axis of whole amounts with thousands separators, named with its unit."""
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axes.set_ylabel(label)


def _usd(axes: Any, label: str) -> None:
    """A y axis of USD: cents shown only where the amounts are small."""
    top = max(abs(v) for v in axes.get_ylim())
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if top >= 100 else "{x:,.2f}"))
    axes.set_ylabel(label)


def _money_panels(money: Any, cost: Any, simulation: dict[str, Any]) -> None:
    """Revenue and margin on one panel, provider cost on its own: cost is often a hundredth
    of revenue, and on a shared scale its bars would vanish (split, not log: margins can be
    negative, which a log scale cannot show)."""
    base = simulation["scenarios"][0]["plans"]
    labels = list(base)
    series = {
        "Revenue": [_number(base[p]["revenue_usd"]) for p in labels],
        "Margin (revenue - cost)": [_number(base[p]["margin_usd"]) for p in labels],
    }
    _bars(money, labels, series, values="{:,.0f}")
    _usd(money, "USD")
    money.set_title("What each plan earns")
    costs = {"Provider cost": [_number(base[p]["cost_usd"]) for p in labels]}
    _bars(cost, labels, costs, False, values="{:,.2f}")
    _usd(cost, "USD")
    cost.set_title("What the work cost the provider")


def _risk_panel(axes: Any, simulation: dict[str, Any]) -> None:
    base = simulation["scenarios"][0]["plans"]
    labels = list(base)
    risks = {RISK_NAMES[k]: [_number(base[p][k]) for p in labels] for k in RISK_NAMES}
    _bars(axes, labels, risks, values="{:.0%}")
    axes.set_ylim(0, 1)  # shares: the whole scale, so that small risks look small
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    axes.set_ylabel("share of spend (customer), of cost (provider)")
    axes.set_title("Who carries the risk")


def money_chart(simulation: dict[str, Any], path: Path) -> Path:
    """Revenue and margin per plan beside the provider's cost, in the baseline scenario."""
    figure, (money, cost) = plt.subplots(1, 2, figsize=(11, 4.8), width_ratios=(2, 1))
    _money_panels(money, cost, simulation)
    figure.suptitle(f"Revenue, margin and cost per plan, {simulation['period']} (USD)")
    return _save(figure, path)


def risk_chart(simulation: dict[str, Any], path: Path) -> Path:
    """Customer risk and provider risk per plan, in the baseline scenario."""
    figure, axes = plt.subplots(figsize=(8, 4.8))
    _risk_panel(axes, simulation)
    axes.set_title(f"Customer risk and provider risk per plan, {simulation['period']}")
    return _save(figure, path)


def tokens_chart(report: dict[str, Any], path: Path) -> Path:
    """Hidden and visible tokens per row of a report, whatever its rows are by.

    Two panels, each on its own scale: hidden tokens are often 10-50 times the visible
    ones, and on a shared scale the visible bars would be a line at zero. A log scale would
    show both but hide how many times larger hidden work is; side by side panels with the
    same rows keep both readable and the ratio is in the title."""
    rows = report["rows"]
    labels = [row["key"] for row in rows]
    group = GROUP_NAMES.get(report["by"], report["by"])
    figure, (hidden, visible) = plt.subplots(1, 2, figsize=(11, 4.8))
    _bars(hidden, labels, {"Hidden": [Decimal(r["tokens_hidden"]) for r in rows]}, False)
    hidden.set_title("Hidden tokens: inputs, reasoning, tool loops")
    _amounts(hidden, "tokens")
    _bars(visible, labels, {"Visible": [Decimal(r["tokens_visible"]) for r in rows]}, False)
    visible.set_title("Visible tokens: what users see")
    _amounts(visible, "tokens")
    for axes in (hidden, visible):
        axes.set_xlabel(group)
    ratio = report["total"]["hidden_ratio"]
    times = "" if ratio is None else f": {Decimal(ratio):.0f} hidden per visible token"
    figure.suptitle(f"Tokens per {group}, {report['period']}{times}")
    return _save(figure, path)


def simulation_chart(simulation: dict[str, Any], path: Path) -> Path:
    """The simulation in one file: earnings, cost and risks per plan (baseline scenario)."""
    _check(path)
    figure, (money, cost, risk) = plt.subplots(1, 3, figsize=(16, 4.8), width_ratios=(2, 1, 2))
    _money_panels(money, cost, simulation)
    _risk_panel(risk, simulation)
    figure.suptitle(f"Plans compared on {simulation['period']}'s work (baseline scenario)")
    return _save(figure, path)


def advice_chart(advice: dict[str, Any], path: Path) -> Path:
    """Margin per task against the hidden-token budget, with the outcome rate of each band
    of hidden tokens (its Wilson interval as a bar) on a second scale.

    The margin is drawn at the budgets of `advice["curve"]`, where it can change; the
    recommended budget is marked with its bootstrap interval."""
    _check(path)
    figure, margin = plt.subplots(figsize=(10, 5.2))
    points = advice["curve"]
    budgets = [p["tokens_hidden_max"] for p in points]
    # Display only: the figures stay exact; the chart needs screen coordinates.
    values = [float(_number(p["margin_per_task_usd"])) for p in points]
    margin.plot(budgets, values, color="#1f5fa8", linewidth=1.6, label="Margin per task")
    margin.axhline(0, color="#444444", linewidth=0.8)
    chosen = advice["recommended"]
    if chosen is not None:
        at = chosen["tokens_hidden_max"]
        value = float(_number(chosen["margin_per_task_usd"]))
        low = float(_number(chosen["margin_per_task_low_usd"]))
        high = float(_number(chosen["margin_per_task_high_usd"]))
        margin.errorbar([at], [value], yerr=[[value - low], [high - value]], fmt="o",
                        color="#c0392b", capsize=4,
                        label=f"Recommended: {at:,} hidden tokens, 95 % interval")  # fmt: skip
    margin.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    margin.set_xlabel("budget: hidden tokens per task")
    _usd(margin, "margin per task, USD")
    margin.grid(color="#dddddd", linewidth=0.6)
    margin.set_axisbelow(True)
    rates = margin.twinx()
    for band in advice["bands"]:
        low_x, high_x = band["tokens_hidden_min"], band["tokens_hidden_max"]
        rate = float(_number(band["outcome_rate"]))
        middle = (low_x + high_x) / 2
        rates.hlines(rate, low_x, high_x, color="#2e8b57", linewidth=3)
        rates.errorbar([middle], [rate], fmt="none", color="#2e8b57", capsize=3,
                       yerr=[[rate - float(_number(band["outcome_rate_low"]))],
                             [float(_number(band["outcome_rate_high"])) - rate]])  # fmt: skip
    rates.plot([], [], color="#2e8b57", linewidth=3, label="Outcome rate of the band (95 %)")
    rates.set_ylim(0, 1.05)
    rates.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    rates.set_ylabel("tasks with a verified outcome")
    handles = [*margin.get_legend_handles_labels()[0], *rates.get_legend_handles_labels()[0]]
    margin.legend(handles=handles, frameon=False, loc="lower right", fontsize=8)
    whose = "" if advice["customer"] is None else f", {advice['customer']}"
    figure.suptitle(f"Margin per task against a reasoning budget: {advice['type']}, "
                    f"{advice['period']}{whose}")  # fmt: skip
    return _save(figure, path)


PUBLISHED_MEASURES = {
    "provider_risk": "Provider risk",
    "customer_risk": "Customer risk",
    "value_alignment": "Value alignment",
}


def published_chart(tables: dict[str, Any], path: Path) -> Path:
    """`payoff tables`: each pricing model's risks and value alignment, and each technique's
    change in cost (per-token revenue follows it) and in the per-outcome margin."""
    figure, (models, techniques) = plt.subplots(1, 2, figsize=(12, 4.8))
    rows = tables["pricing_models"]
    labels = [row["model"] for row in rows]
    series = {name: [_number(row[key]) for row in rows] for key, name in PUBLISHED_MEASURES.items()}
    _bars(models, labels, series, values="{:.0%}")
    models.set_ylim(0, 1.1)
    models.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    models.set_title("Pricing models: risks and value alignment")
    changes = tables["techniques"]
    names = [row["technique"] for row in changes]
    moves = {
        "Cost": [_number(row["cost_change"]) for row in changes],
        "Margin, per-outcome": [_number(row["margin_change"]["per-outcome"]) for row in changes],
    }
    _bars(techniques, names, moves, values="{:+.0%}")
    # Symmetric log: an agent loop multiplies cost many times over, a cache cuts it by half.
    techniques.set_yscale("symlog", linthresh=1)
    highest = max([Decimal(1), *(v for values in moves.values() for v in values)])
    techniques.set_ylim(-1.5, float(highest) * 8)  # display only: room for the labels
    techniques.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    techniques.set_title("Techniques: change with the technique")
    figure.suptitle(f"The published tables on this ledger, {tables['period']}")
    return _save(figure, path)
