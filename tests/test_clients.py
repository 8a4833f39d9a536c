"""The clients people already run, each the real package, through a real `payoff serve`.

Every client in `CLIENTS` runs a small agent (tests/clients/) against the fake provider
(tests/fake_provider.py) and exports what it emits over OTLP/HTTP to `payoff serve` on
loopback, as an application would; the tests then read the ledger over the HTTP API and
check what the provider said against what was recorded: each model call's buckets, one task
per agent run with its type and status, its visible and hidden tokens and its cost. The
table "Tested clients" in docs/otlp.md is the summary of these tests. The server runs with a
short `--idle-timeout` (IDLE_TIMEOUT_S): a run that is a conversation (pydantic-ai's) closes
once it goes quiet, and its test reads the ledger after that; and a short settle time, the
harness reading the ledger once the server has judged what the agent sent.

Where a client's truth does not arrive today, the test still asserts the true values and is
marked `xfail(strict=True)` with the cause (the attribute names the client sends): it turns
into a failure the day the receiver reads them, and the marker must then go. To see what a
client emits, point it at tests/span_dump.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import genai_prices
import httpx
import pytest

from api_support import SHORT_SETTLE, Keys, LiveServer, live_server, prepare_ledger
from fake_provider import ANSWER, EXPECTED, PLAN, Buckets, FakeProvider
from payoff.core.money import format_nanousd, round_usd_to_nanousd

# Every test here starts processes and a live server.
pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
CLIENTS_DIR = TESTS / "clients"
LEGACY_DIR = CLIENTS_DIR / ".legacy"
VERCEL_DIR = CLIENTS_DIR / "vercel"
TASK_TYPE = "support.ticket"
RUN_TIMEOUT_S = 180
"""A guard against a hung agent only: LiteLLM alone takes 5-25 s to import, by machine load."""
PARALLEL_RUNS = 3
"""Agents running at once: on 2 cores, 3 keep them busy while each waits on its imports."""

IDLE_TIMEOUT_S = 10
"""The harness's `payoff serve --idle-timeout`: short, so that a conversation task closes
while its test waits, yet long beside one agent run, whose spans all leave within a second or
two even on a loaded machine (a trace quiet for longer is judged as it stands)."""
CLOSE_WAIT_S = 4 * IDLE_TIMEOUT_S
"""How long the harness waits for a conversation task to close (a sweep runs every quarter
of the idle timeout)."""

RESOURCE = "resource"
"""The customer as a resource attribute, `payoff.customer` in OTEL_RESOURCE_ATTRIBUTES."""


@dataclass(frozen=True)
class Client:
    """One client package and how its agent runs."""

    name: str
    script: str
    """The agent in tests/clients/ (a .py run by this Python, or the Node agent)."""
    provider: str
    """Whose API the agent calls: the key of fake_provider.EXPECTED."""
    task_type: str = TASK_TYPE
    tool_steps: int = 0
    """Tool calls the agent makes (the frameworks call one; the plain SDK agents none)."""
    own_customer: str | None = None
    """How the client itself says who the customer is (AGENT_CUSTOMER_ON), if it can."""
    legacy: bool = False
    """Runs with tests/clients/.legacy first on its path (requirements/clients-legacy.txt)."""
    venv: str | None = None
    """Runs in this venv of tests/clients/ rather than the test venv (`make clients`)."""
    conversation: bool = False
    """Its run is a conversation task (`gen_ai.conversation.id` on every span), closed when it
    goes quiet for the idle timeout: the harness reads the ledger after that."""

    @property
    def node(self) -> bool:
        return self.script.endswith(".mjs")


CLIENTS = {
    client.name: client
    for client in [
        Client("openai-v2", "run_openai_v2.py", "openai", legacy=True),
        Client("genai-openai", "run_genai_openai.py", "openai", own_customer="agent-span"),
        Client("anthropic-sdk", "run_anthropic_sdk.py", "anthropic"),
        Client("genai-anthropic", "run_genai_anthropic.py", "anthropic"),
        Client("google-genai", "run_google_genai.py", "google"),
        Client("openllmetry-openai", "run_openllmetry_openai.py", "openai"),
        Client("openllmetry-legacy", "run_openllmetry_legacy.py", "openai",
               venv=".legacy-openllmetry"),
        Client("openllmetry-anthropic", "run_openllmetry_anthropic.py", "anthropic"),
        Client("openinference-openai", "run_openinference_openai.py", "openai",
               own_customer="user-id"),
        Client("pydantic-ai", "run_pydantic_ai.py", "openai", task_type="support",
               tool_steps=1, conversation=True),
        Client("vercel-ai", "vercel/agent.mjs", "openai", tool_steps=1,
               own_customer="metadata"),
        Client("litellm", "run_litellm.py", "openai"),
        Client("litellm-payoff", "run_litellm_payoff.py", "openai"),
        Client("payoff-sdk", "run_payoff_sdk.py", "openai"),
    ]
}  # fmt: skip


# -- why a client's truth does not arrive today ------------------------------------------------

OPENAI_V2_BUCKETS = (
    "client side: opentelemetry-instrumentation-openai-v2 2.4b0 sends only "
    "gen_ai.usage.input_tokens/output_tokens (no cache read, no reasoning) in either semconv "
    "mode; the receiver cannot recover them"
)
LITELLM_BUCKETS = (
    "client side: LiteLLM's otel callback sends gen_ai.usage.input_tokens/output_tokens, "
    "gen_ai.system and no cache read nor reasoning (only inside metadata.usage_object, a "
    "Python repr string)"
)
LITELLM_SPLIT = (
    "LiteLLM's otel callback writes its attributes onto the application's current span (the "
    "invoke_agent span becomes a `chat` span carrying one of the two calls, the other "
    "lost): the run is not one task of two calls"
)

XFAIL_STEPS = {
    "openai-v2": OPENAI_V2_BUCKETS,
    "litellm": f"{LITELLM_SPLIT}; {LITELLM_BUCKETS}",
}
XFAIL_TASK = {
    "litellm": LITELLM_SPLIT,
}
XFAIL_TOKENS_AND_COST = XFAIL_STEPS
XFAIL_OWN_CUSTOMER: dict[str, str] = {}


def clients(xfails: dict[str, str], chosen: list[Client] | None = None) -> list[Any]:
    """The clients (all, or those chosen) as test parameters, each known failure marked
    strict with its cause."""
    return [
        pytest.param(
            client,
            id=client.name,
            # Only a wrong value is the known failure: an agent that does not run is not.
            marks=[
                pytest.mark.xfail(strict=True, raises=AssertionError, reason=xfails[client.name])
            ]
            if client.name in xfails
            else [],
        )
        for client in (CLIENTS.values() if chosen is None else chosen)
    ]


# -- running an agent and reading the ledger ---------------------------------------------------


class AgentFailed(Exception):
    """An agent did not run to its end: a broken install, not a client's known failure."""


@dataclass
class Run:
    """What one agent run left in the ledger: the customer's tasks, each with its steps."""

    client: Client
    customer: str
    started: dt.datetime
    tasks: list[dict[str, Any]]
    output: str

    def explain(self) -> str:
        return f"{self.client.name} run for {self.customer}:\n{self.output}\n" + json.dumps(
            self.tasks, indent=1
        )

    def llm_steps(self) -> list[dict[str, Any]]:
        steps = [s for task in self.tasks for s in task["step_list"] if s["kind"] == "llm"]
        return sorted(steps, key=lambda step: step["occurred_at_us"])


@dataclass
class Harness:
    """The server, the fake provider and the agent runs, shared by the tests of a module."""

    server: LiveServer
    keys: Keys
    provider: FakeProvider
    pool: ThreadPoolExecutor
    runs: dict[tuple[str, str], Future[Run]] = field(default_factory=dict)

    def start(self, client: Client, customer_on: str = RESOURCE) -> None:
        """Start the client's agent run for this way of naming the customer, once."""
        key = (client.name, customer_on)
        if key not in self.runs:
            self.runs[key] = self.pool.submit(self._run, client, customer_on)

    def run(self, client: Client, customer_on: str = RESOURCE) -> Run:
        """The client's agent run (each runs once; the tests read the same ledger)."""
        self.start(client, customer_on)
        return self.runs[(client.name, customer_on)].result()

    def _run(self, client: Client, customer_on: str) -> Run:
        customer = client.name if customer_on == RESOURCE else f"{client.name}.{customer_on}"
        started = dt.datetime.now(dt.UTC)
        completed = subprocess.run(
            self._command(client),
            env=self._environment(client, customer_on, customer),
            cwd=CLIENTS_DIR,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        output = completed.stdout + completed.stderr
        if completed.returncode != 0:
            raise AgentFailed(f"{client.name} agent exited {completed.returncode}:\n{output}")
        self.server.wait_settled(time.time())  # its exporter flushed before it exited
        tasks = self._tasks_of(customer)
        deadline = time.monotonic() + CLOSE_WAIT_S
        while client.conversation and time.monotonic() < deadline:
            if tasks and all(task["status"] != "open" for task in tasks):
                break
            time.sleep(0.5)
            tasks = self._tasks_of(customer)
        return Run(client, customer, started, tasks, output)

    def _command(self, client: Client) -> list[str]:
        if client.venv is not None:
            python = CLIENTS_DIR / client.venv / "bin" / "python"
            if not python.exists():
                pytest.fail(f"{python} is missing: run `make clients` first (make test does)")
            return [str(python), str(CLIENTS_DIR / client.script)]
        if not client.node:
            return [sys.executable, str(CLIENTS_DIR / client.script)]
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed: the Vercel AI SDK agent needs it")
        if not (VERCEL_DIR / "node_modules").is_dir():
            pytest.fail(f"run `npm ci --prefix {VERCEL_DIR}` (or `make clients`) first")
        return [node, str(CLIENTS_DIR / client.script)]

    def _environment(self, client: Client, customer_on: str, customer: str) -> dict[str, str]:
        resource = "service.name=agent"
        if customer_on == RESOURCE:
            resource += f",payoff.customer={customer}"
        paths = [str(CLIENTS_DIR), str(TESTS), str(TESTS.parent / "src")]
        if client.legacy:
            if not LEGACY_DIR.is_dir():
                pytest.fail(f"{LEGACY_DIR} is missing: run `make clients` first (make test does)")
            paths.insert(0, str(LEGACY_DIR))
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(paths),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{self.server.url}/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"Authorization=Bearer%20{self.keys.ingest}",
            "OTEL_RESOURCE_ATTRIBUTES": resource,
            "FAKE_PROVIDER_URL": self.provider.url,
            "AGENT_CUSTOMER_ON": customer_on,
            "AGENT_CUSTOMER": customer,
            "PAYOFF_URL": self.server.url,
            "PAYOFF_API_KEY": self.keys.ingest,
            # LiteLLM would fetch its price map from the network at import.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }

    def _tasks_of(self, customer: str) -> list[dict[str, Any]]:
        headers = self.keys.header(self.keys.admin)
        with httpx.Client(base_url=self.server.url, headers=headers, timeout=10) as http:
            # raise_for_status, not assert: an unreadable ledger is no client's known failure.
            listed = http.get("/v1/tasks", params={"customer": customer}).raise_for_status()
            return [
                http.get(f"/v1/tasks/{task['id']}").raise_for_status().json()
                for task in listed.json()["items"]
            ]


@pytest.fixture(scope="module")
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """One ledger and server for every client (each its own customers), the runs started
    up front, a few at a time: mostly interpreter start-up and imports, they overlap well."""
    folder = tmp_path_factory.mktemp("clients")
    db, log = folder / "ledger.db", folder / "serve.log"
    keys = prepare_ledger(db)
    provider = FakeProvider().start()
    try:
        idle = ("--idle-timeout", str(IDLE_TIMEOUT_S), *SHORT_SETTLE)
        with live_server(db, log, *idle) as server, ThreadPoolExecutor(PARALLEL_RUNS) as pool:
            harness = Harness(server, keys, provider, pool)
            for client, customer_on in selected_runs(request.session.items):
                harness.start(client, customer_on)
            yield harness
    finally:
        provider.shutdown()
        provider.server_close()


def selected_runs(items: list[pytest.Item]) -> list[tuple[Client, str]]:
    """The agent runs the selected tests of this module will read."""
    runs = []
    for item in items:
        client = getattr(item, "callspec", None) and item.callspec.params.get("client")
        if item.module is not sys.modules[__name__] or not isinstance(client, Client):
            continue
        own = item.name.startswith("test_the_customer_named")
        runs.append((client, client.own_customer if own and client.own_customer else RESOURCE))
    return runs


# -- what the provider said ----------------------------------------------------------------------


def expected_calls(client: Client) -> list[Buckets]:
    return [EXPECTED[client.provider][PLAN], EXPECTED[client.provider][ANSWER]]


def bucket_view(step: dict[str, Any]) -> Buckets:
    return Buckets(
        step["provider"],
        step["model"],
        step["input_tokens"],
        step["cache_read_tokens"],
        step["cache_write_tokens"],
        step["output_tokens"],
        step["reasoning_tokens"],
    )


def expected_cost_nanousd(calls: list[Buckets], when: dt.datetime) -> int:
    """What genai-prices says the calls cost, each rounded to nano-USD as the ledger keeps it."""
    total = 0
    for call in calls:
        usage = genai_prices.Usage(
            input_tokens=call.input_tokens,
            cache_read_tokens=call.cache_read_tokens,
            cache_write_tokens=call.cache_write_tokens,
            output_tokens=call.output_tokens,
        )
        price = genai_prices.calc_price(
            usage, call.model, provider_id=call.provider, genai_request_timestamp=when
        )
        total += round_usd_to_nanousd(price.total_price)
    return total


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("client", clients(XFAIL_STEPS))
def test_every_model_call_arrives_once_with_every_bucket(harness: Harness, client: Client) -> None:
    run = harness.run(client)
    found = [bucket_view(step) for step in run.llm_steps()]
    assert found == expected_calls(client), run.explain()


@pytest.mark.parametrize("client", clients(XFAIL_TASK))
def test_the_agent_run_is_one_task_with_its_type_and_status(
    harness: Harness, client: Client
) -> None:
    run = harness.run(client)
    assert len(run.tasks) == 1, run.explain()
    (task,) = run.tasks
    kinds = sorted(step["kind"] for step in task["step_list"])
    assert kinds == sorted(["llm", "llm"] + ["tool"] * client.tool_steps), run.explain()
    assert (task["customer"], task["type"], task["status"]) == (
        client.name,
        client.task_type,
        "completed",
    ), run.explain()


@pytest.mark.parametrize("client", clients(XFAIL_TOKENS_AND_COST))
def test_visible_and_hidden_tokens_and_the_cost_are_exact(harness: Harness, client: Client) -> None:
    run = harness.run(client)
    calls = expected_calls(client)
    answer = calls[-1]  # the last model call is the answer the user reads
    visible = answer.output_tokens - answer.reasoning_tokens
    total = sum(call.input_tokens + call.output_tokens for call in calls)
    cost = format_nanousd(expected_cost_nanousd(calls, run.started))
    shown = [(t["tokens_visible"], t["tokens_hidden"], t["cost_usd"]) for t in run.tasks]
    assert shown == [(visible, total - visible, cost)], run.explain()


OWN_CUSTOMER = [client for client in CLIENTS.values() if client.own_customer]


@pytest.mark.parametrize("client", clients(XFAIL_OWN_CUSTOMER, OWN_CUSTOMER))
def test_the_customer_named_the_clients_own_way_gets_the_run(
    harness: Harness, client: Client
) -> None:
    """genai-openai: on the application's agent span; OpenInference: `using_user`; the AI
    SDK: telemetry metadata; payoff's SDK: `meter.task(customer=...)`."""
    assert client.own_customer is not None
    run = harness.run(client, client.own_customer)
    steps = [step for task in run.tasks for step in task["step_list"] if step["kind"] == "llm"]
    assert len(run.tasks) == 1 and len(steps) == 2, run.explain()
    assert run.tasks[0]["customer"] == run.customer, run.explain()


# -- a stream without usage ----------------------------------------------------------------------

STREAM_WITHOUT_USAGE = Client("genai-openai-stream", "run_genai_openai_stream.py", "openai")


@pytest.mark.parametrize("client", clients({}, [STREAM_WITHOUT_USAGE]))
def test_a_stream_without_usage_is_an_unpriced_step_and_stays_the_visible_one(
    harness: Harness, client: Client
) -> None:
    """The answer streamed with no usage (OpenAI sends none unless asked): a step all the
    same, unpriced, with its model, as payoff's SDK records it, and still the visible one."""
    run = harness.run(client)
    plan = expected_calls(client)[0]
    assert len(run.tasks) == 1, run.explain()
    (task,) = run.tasks
    steps = sorted(task["step_list"], key=lambda step: step["occurred_at_us"])
    assert len(steps) == 2 and bucket_view(steps[0]) == plan, run.explain()
    assert steps[1]["model"] == plan.model and steps[1]["cost_usd"] is None, run.explain()
    cost = format_nanousd(expected_cost_nanousd([plan], run.started))
    shown = (task["unpriced_steps"], task["tokens_visible"], task["cost_usd"])
    assert shown == (1, 0, cost), run.explain()


# -- what arrives from the clients that do not send it all ---------------------------------------
# The truth does not arrive from these clients (their strict expected failures above say why);
# what does arrive is pinned here, so that each "what is exact" of docs/otlp.md is a test.

LITELLM_ALONE = Client("litellm-alone", "run_litellm_alone.py", "openai")


def input_and_output_only(call: Buckets) -> Buckets:
    """A call as a client that sends only its input and output totals reports it."""
    return replace(call, cache_read_tokens=0, reasoning_tokens=0)


def shown(task: dict[str, Any]) -> tuple[Any, ...]:
    return (task["type"], task["status"], task["tokens_visible"], task["tokens_hidden"],
            task["cost_usd"])  # fmt: skip


@pytest.mark.parametrize("client", clients({}, [CLIENTS["openai-v2"]]))
def test_openai_v2_sends_input_and_output_exact_and_nothing_else(
    harness: Harness, client: Client
) -> None:
    """Its cached and reasoning tokens never arrive: cached input is priced as plain input,
    and the answer's reasoning is counted visible. The task is exact."""
    run = harness.run(client)
    calls = [input_and_output_only(call) for call in expected_calls(client)]
    assert [bucket_view(step) for step in run.llm_steps()] == calls, run.explain()
    (task,) = run.tasks
    visible = calls[-1].output_tokens
    total = sum(call.input_tokens + call.output_tokens for call in calls)
    cost = format_nanousd(expected_cost_nanousd(calls, run.started))
    assert shown(task) == (TASK_TYPE, "completed", visible, total - visible, cost), run.explain()


@pytest.mark.parametrize("client", clients({}, [CLIENTS["litellm"]]))
def test_litellm_inside_an_application_span_sends_at_most_one_of_its_calls(
    harness: Harness, client: Client
) -> None:
    """LiteLLM's callback writes each call's attributes onto the application's `invoke_agent`
    span, which then is a call and no longer a run: the task never closes and has no visible
    step. Which call it carries is a race in LiteLLM (its success callbacks run on a worker
    thread: a call written after the span ended is lost, one written before overwrites), so
    the task is exactly one of the two calls, input and output exact, or, when both writes
    came too late, the plain run the application sent, with no step."""
    run = harness.run(client)
    calls = [input_and_output_only(call) for call in expected_calls(client)]
    steps = [bucket_view(step) for step in run.llm_steps()]
    (task,) = run.tasks
    if not steps:
        assert shown(task) == (TASK_TYPE, "completed", 0, 0, "0.000000000"), run.explain()
        return
    assert len(steps) == 1, run.explain()
    (step,) = steps
    assert step in calls, run.explain()
    cost = format_nanousd(expected_cost_nanousd([step], run.started))
    total = step.input_tokens + step.output_tokens
    assert shown(task) == (TASK_TYPE, "open", 0, total, cost), run.explain()


@pytest.mark.parametrize("client", clients({}, [LITELLM_ALONE]))
def test_litellm_alone_sends_each_call_as_a_task_of_its_own(
    harness: Harness, client: Client
) -> None:
    """With no application span, each call is a trace of its own: input and output exact,
    a task per call that never closes (no run), nothing inferred visible."""
    run = harness.run(client)
    calls = [input_and_output_only(call) for call in expected_calls(client)]
    assert [bucket_view(step) for step in run.llm_steps()] == calls, run.explain()
    by_time = sorted(run.tasks, key=lambda task: task["step_list"][0]["occurred_at_us"])
    expected = [
        (None, "open", 0, call.input_tokens + call.output_tokens,
         format_nanousd(expected_cost_nanousd([call], run.started)))
        for call in calls
    ]  # fmt: skip
    assert [shown(task) for task in by_time] == expected, run.explain()
