"""pydantic-ai with its own OpenTelemetry instrumentation (`Agent.instrument_all()`).

One agent run with a tool: a first model call that calls the tool, then the answer. The
model is OpenAI's Chat Completions through pydantic-ai's OpenAIChatModel.
"""

import agent
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

provider = agent.setup_tracing()
model = OpenAIChatModel(
    "gpt-5-mini", provider=OpenAIProvider(base_url=agent.provider_url("/v1"), api_key="sk-fake")
)
Agent.instrument_all()
support = Agent(model, name=agent.AGENT_NAME)
trace_ids: list[str] = []


@support.tool_plain
def lookup_order(order_id: str) -> dict[str, str]:
    """Look an order up by its id."""
    from opentelemetry import trace

    trace_ids.append(f"{trace.get_current_span().get_span_context().trace_id:032x}")
    return {"order_id": order_id, "status": "shipped"}


support.run_sync(agent.PLAN_PROMPT)
agent.finish(provider, trace_ids)
