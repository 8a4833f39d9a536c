"""A small fake agent metered with the payoff SDK, end to end, with no network.

    python examples/sdk_agent.py [LEDGER]      # default: a fresh ledger in a temporary folder

The "model" answers with the JSON bodies the OpenAI and Anthropic APIs return, so the SDK
sees what it would see from `client.chat.completions.create(...)` or
`client.messages.create(...)`. The agent plans (hidden reasoning), searches the web (a tool
with a price), answers (visible), and claims an outcome.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import payoff


def fake_planner(question: str) -> dict[str, object]:
    """An OpenAI reasoning model's chat completion: most of its output is reasoning."""
    return {
        "object": "chat.completion",
        "model": "o3-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "search, answer"}}],
        "usage": {
            "prompt_tokens": 2_400,
            "completion_tokens": 1_900,
            "prompt_tokens_details": {"cached_tokens": 2_048},
            "completion_tokens_details": {"reasoning_tokens": 1_850},
        },
    }


def fake_writer(question: str, notes: str) -> dict[str, object]:
    """An Anthropic message: input_tokens leaves out the cached prompt, added by payoff."""
    return {
        "type": "message",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Your parcel ships today."}],
        "usage": {"input_tokens": 800, "cache_read_input_tokens": 3_000, "output_tokens": 120},
    }


def run(ledger: Path) -> payoff.Task:
    meter = payoff.Meter(ledger)
    budget = payoff.Budget(hidden_tokens=50_000, cost="0.05", enforce=True)
    with meter.task(customer="acme", type="support.ticket", budget=budget) as task:
        question = "Where is my parcel?"
        plan = task.record(fake_planner(question))  # a hidden step
        task.tool("web_search", cost="0.004")
        answer = task.record(fake_writer(question, str(plan["choices"])), visible=True)
        task.outcome("ticket.resolved", value="120.00")
    meter.close()
    print(f"answer: {answer['content'][0]['text']}")
    return task


def report(ledger: Path, task: payoff.Task) -> None:
    store = payoff.open_store(ledger)
    (summary,) = payoff.list_tasks(store, "acme")
    store.close()
    left = task.remaining()
    print(f"task {summary.id} ({summary.type}): {summary.status}, {summary.steps} steps")
    print(f"visible tokens: {summary.tokens_visible:,}")
    print(f"hidden tokens:  {summary.tokens_hidden:,}")
    print(f"cost:           {payoff.format_nanousd(summary.cost_nanousd)} USD")
    print(f"hidden cost:    {payoff.format_nanousd(summary.cost_hidden_nanousd)} USD")
    print(f"budget left:    {left.hidden_tokens:,} hidden tokens, {left.cost} USD")


def main() -> None:
    if len(sys.argv) > 1:
        ledger = Path(sys.argv[1])
        report(ledger, run(ledger))
        return
    with tempfile.TemporaryDirectory() as folder:
        ledger = Path(folder) / "agent.db"
        report(ledger, run(ledger))


if __name__ == "__main__":
    main()
