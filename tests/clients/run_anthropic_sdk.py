"""The anthropic SDK's own OpenTelemetry tracing (on by default since 2.14, no instrumentation).

Every API call is an `anthropic.messages.create` span of the global tracer provider; the
environment variable ANTHROPIC_OPEN_TELEMETRY=false, or `open_telemetry=False` on the client,
turns it off.
"""

import agent

provider = agent.setup_tracing()
trace_ids: list[str] = []
agent.anthropic_run(trace_ids)
agent.finish(provider, trace_ids)
