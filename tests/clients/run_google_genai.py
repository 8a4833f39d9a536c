"""The official google-genai instrumentation (opentelemetry-instrumentation-google-genai)."""

import agent
from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

provider = agent.setup_tracing()
# Its release declares google-genai<3; the SDK this venv runs is 3.x, so the dependency check
# would instrument nothing (it says so on stderr). The wrappers still fit the 3.x client.
GoogleGenAiSdkInstrumentor().instrument(skip_dep_check=True)
trace_ids: list[str] = []
agent.gemini_run(trace_ids)
agent.finish(provider, trace_ids)
