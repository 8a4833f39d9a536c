"""The attribute names payoff reads from GenAI spans, each with where it was taken from.

Sources, read at these paths (docs/otlp.md has the same table for users):

- OTel GenAI semantic conventions: open-telemetry/semantic-conventions-genai
  `docs/registry/attributes/gen-ai.md`, and the attribute constants generated from them in
  open-telemetry/opentelemetry-python-genai
  `util/opentelemetry-util-genai/src/opentelemetry/util/genai/semconv/gen_ai/attributes.py`
  (`GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS`, which the newest instrumentations emit in place
  of the deprecated `gen_ai.usage.cache_creation.input_tokens`).
- OpenLLMetry (legacy names): traceloop/openllmetry
  `packages/opentelemetry-semantic-conventions-ai/opentelemetry/semconv_ai/__init__.py`
  (`gen_ai.usage.prompt_tokens`, `gen_ai.usage.cache_read_input_tokens`,
  `gen_ai.usage.cache_creation_input_tokens`, `gen_ai.usage.reasoning_tokens`; releases up
  to 0.47 sent reasoning as `llm.usage.reasoning_tokens`, `LLM_USAGE_REASONING_TOKENS` of
  opentelemetry-semantic-conventions-ai 0.4).
- OpenInference: Arize-ai/openinference
  `python/openinference-semantic-conventions/src/openinference/semconv/trace/__init__.py`
  (`llm.token_count.*`, `openinference.span.kind` AGENT/TOOL/LLM/CHAIN, `user.id`,
  `session.id`, `tool.name`).
- pydantic-ai: pydantic/pydantic-ai `pydantic_ai_slim/pydantic_ai/usage.py`
  (`RequestUsage.opentelemetry_attributes`: provider details such as OpenAI's
  `reasoning_tokens` as `gen_ai.usage.details.<key>`) and
  `pydantic_ai_slim/pydantic_ai/capabilities/instrumentation.py` (`invoke_agent` spans with
  `gen_ai.conversation.id`, a fresh UUID7 per run unless the history carries one).
- Vercel AI SDK: vercel/ai `packages/ai/src/telemetry/get-base-telemetry-attributes.ts`
  (`ai.telemetry.metadata.<key>`: payoff reads its own names under it, `payoff.customer`
  and `payoff.task_type`, and the bare `customer` and `task_type`; `ai.model.provider`),
  `packages/otel/src/legacy-open-telemetry.ts` (`ai.generateText` / `ai.streamText` runs,
  `ai.generateText.doGenerate` / `ai.streamText.doStream` model calls carrying
  `gen_ai.system` = the provider id, `ai.toolCall` tool spans,
  `ai.usage.inputTokenDetails.cacheReadTokens` / `.cacheWriteTokens`,
  `ai.usage.outputTokenDetails.reasoningTokens`, `ai.usage.cachedInputTokens`,
  `ai.usage.reasoningTokens`; `ai.embed` / `ai.embedMany` runs around `.doEmbed` calls
  with `ai.usage.tokens`, in `packages/ai/src/embed/embed.ts` and `embed-many.ts`) and
  `packages/otel/src/assemble-operation-name.ts`
  (`ai.operationId`, `ai.telemetry.functionId`); provider ids from each provider package's
  `*-provider.ts` (`openai.chat`, `openai.responses`, `anthropic.messages`,
  `google.generative-ai`, `google.vertex.chat`, `azure.responses`, `xai.chat`, ...).
"""

from __future__ import annotations

# -- operations and span kinds --------------------------------------------------------------

OPERATION = "gen_ai.operation.name"
INVOKE_AGENT = "invoke_agent"
EXECUTE_TOOL = "execute_tool"
INVOKE_WORKFLOW = "invoke_workflow"
# Operations of one model call (semconv well-known values): a span with one of these and a
# model is a model call even when it carries no usage (a stream that reported none).
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})

OPENINFERENCE_KIND = "openinference.span.kind"
OPENINFERENCE_AGENT = "AGENT"
OPENINFERENCE_TOOL = "TOOL"
OPENINFERENCE_MODEL_KINDS = frozenset({"LLM", "EMBEDDING"})
# OpenInference spans that sum the usage of the spans below them (never billed themselves).
OPENINFERENCE_AGGREGATES = frozenset({"AGENT", "CHAIN"})

AI_SDK_OPERATION = "ai.operationId"
# Each AI SDK call is an outer span (a run: its `ai.usage.*` are the sums of its model calls,
# never billed) around one inner span per model call (`do*`), each billed once.
AI_SDK_RUNS = frozenset(
    {
        "ai.generateText",
        "ai.streamText",
        "ai.generateObject",
        "ai.streamObject",
        "ai.embed",
        "ai.embedMany",
    }
)
AI_SDK_MODEL_CALLS = frozenset(
    {
        "ai.generateText.doGenerate",
        "ai.streamText.doStream",
        "ai.generateObject.doGenerate",
        "ai.streamObject.doStream",
        "ai.embed.doEmbed",
        "ai.embedMany.doEmbed",
    }
)
AI_SDK_TOOL = "ai.toolCall"

# -- who, what and which task ---------------------------------------------------------------

AGENT_NAMES = ("gen_ai.agent.name", "ai.telemetry.functionId")
"""A run's name, the task type of last resort."""
TOOL_NAMES = ("gen_ai.tool.name", "tool.name", "ai.toolCall.name")
CONVERSATIONS = ("gen_ai.conversation.id", "session.id")
REQUEST_MODEL = "gen_ai.request.model"
CUSTOMERS = (
    "payoff.customer",
    "ai.telemetry.metadata.payoff.customer",
    "ai.telemetry.metadata.customer",
    "enduser.id",
    "user.id",
)
TASK_TYPES = (
    "payoff.task_type",
    "ai.telemetry.metadata.payoff.task_type",
    "ai.telemetry.metadata.task_type",
)
VISIBLE = "payoff.visible"
"""Said of one step: the application knows which call the user reads."""
AI_SDK_VISIBLE = "ai.telemetry.metadata.visible"
"""Said of a whole AI SDK call (every step of it carries the call's metadata): `false` keeps
its steps from being taken for the answer; `true` leaves the choice to inference."""
COST = "payoff.cost"

# -- token buckets: each bucket's spellings, first found wins ------------------------------

INPUT_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
    "ai.usage.tokens",  # an embedding call's input
)
OUTPUT_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "ai.usage.outputTokens",
    "ai.usage.completionTokens",
)
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "ai.usage.inputTokenDetails.cacheReadTokens",
    "ai.usage.cachedInputTokens",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "ai.usage.inputTokenDetails.cacheWriteTokens",
)
REASONING_KEYS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.usage.details.reasoning_tokens",
    "llm.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
    "ai.usage.outputTokenDetails.reasoningTokens",
    "ai.usage.reasoningTokens",
)
BUCKETS = (INPUT_KEYS, CACHE_READ_KEYS, CACHE_WRITE_KEYS, OUTPUT_KEYS, REASONING_KEYS)
USAGE_KEYS = frozenset(key for keys in BUCKETS for key in keys)

# -- usage details (record format v2): each field's spellings, first found wins -------------
# OTel semconv's modality counts (opentelemetry-util-genai 1.3b0
# `opentelemetry/util/genai/_inference_invocation.py`:
# gen_ai.usage.{text,image,audio}.input_tokens, .output_tokens, .cache_read.input_tokens;
# video after the same pattern), pydantic-ai's first-class parts as `gen_ai.usage.details.*`
# (`usage.py`: input_audio_tokens, cache_audio_read_tokens, output_audio_tokens; Anthropic's
# `ephemeral_1h_input_tokens` and `web_search_requests` from
# `models/anthropic/_response.py`), the anthropic SDK's own tracing
# (anthropic 2.14.0 `anthropic/_tracing.py` `SPAN_ATTRIBUTES`:
# anthropic.usage.cache_creation.ephemeral_1h_input_tokens) and
# OpenInference (`LLM_TOKEN_COUNT_PROMPT_DETAILS_AUDIO`, `..._COMPLETION_DETAILS_AUDIO`).
# Each means what the record field means: media input includes its cached part, media output
# is outside reasoning.

DETAILS = (
    ("input_audio_tokens", (
        "gen_ai.usage.audio.input_tokens",
        "gen_ai.usage.details.input_audio_tokens",
        "llm.token_count.prompt_details.audio",
    )),
    ("input_image_tokens", ("gen_ai.usage.image.input_tokens",)),
    ("input_video_tokens", ("gen_ai.usage.video.input_tokens",)),
    ("cache_audio_read_tokens", (
        "gen_ai.usage.audio.cache_read.input_tokens",
        "gen_ai.usage.details.cache_audio_read_tokens",
    )),
    ("cache_image_read_tokens", ("gen_ai.usage.image.cache_read.input_tokens",)),
    ("cache_video_read_tokens", ("gen_ai.usage.video.cache_read.input_tokens",)),
    ("cache_write_1h_tokens", (
        "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
        "gen_ai.usage.details.ephemeral_1h_input_tokens",
    )),
    ("output_audio_tokens", (
        "gen_ai.usage.audio.output_tokens",
        "gen_ai.usage.details.output_audio_tokens",
        "llm.token_count.completion_details.audio",
    )),
    ("output_image_tokens", ("gen_ai.usage.image.output_tokens",)),
    ("output_video_tokens", ("gen_ai.usage.video.output_tokens",)),
)  # fmt: skip
WEB_SEARCH_KEYS = ("gen_ai.usage.details.web_search_requests",)
"""Searches the provider billed: Anthropic's (and OpenRouter's) `server_tool_use` count as
pydantic-ai reports it."""
SEARCHES_NOT_BILLED_BY_REQUEST = frozenset({"google"})
"""Providers whose web-search count above is not what they bill: pydantic-ai reports Gemini's
grounding queries under that name, while Gemini bills per grounded prompt or query by model."""
DETAIL_KEYS = frozenset(key for _, keys in DETAILS for key in keys) | frozenset(WEB_SEARCH_KEYS)

REPORTED = BUCKETS + tuple(keys for _, keys in DETAILS) + (WEB_SEARCH_KEYS,)
"""Everything a model call can report, bucket by bucket and detail by detail."""

RESPONSE_ID = "gen_ai.response.id"
"""The provider's id of one response: two model-call spans of a trace with the same id (and
the same provider) are one call seen twice, as when the anthropic SDK traces a call beside an
instrumentation that traces it too."""

# Who is billed for the call comes before what model family it is: Claude on Bedrock names
# `aws` as OpenInference's llm.provider and `anthropic` as its llm.system.
PROVIDER_KEYS = (
    "gen_ai.provider.name",
    "gen_ai.system",
    "llm.provider",
    "llm.system",
    "ai.model.provider",
)
# The response names the model that actually ran (a dated snapshot rather than an alias).
MODEL_KEYS = ("gen_ai.response.model", REQUEST_MODEL, "llm.model_name", "ai.model.id")
MODEL_KEYS_SET = frozenset(MODEL_KEYS)

WANTED_KEYS = frozenset(
    {
        OPERATION,
        OPENINFERENCE_KIND,
        AI_SDK_OPERATION,
        VISIBLE,
        AI_SDK_VISIBLE,
        COST,
        RESPONSE_ID,
        *AGENT_NAMES,
        *TOOL_NAMES,
        *CONVERSATIONS,
        *CUSTOMERS,
        *TASK_TYPES,
        *USAGE_KEYS,
        *DETAIL_KEYS,
        *PROVIDER_KEYS,
        *MODEL_KEYS,
    }
)
"""The only attributes read; the others (prompts, completions) are never even decoded."""

# -- providers ------------------------------------------------------------------------------

# Provider names of OTel semconv (current and deprecated `gen_ai.system` values),
# OpenLLMetry, OpenInference and the AI SDK (the part of its provider id before the first
# dot, lower-cased), to the provider ids of the price catalog (genai-prices 0.2.3). Anything
# else passes through unchanged and is then unpriced.
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "aws": "aws",
    "bedrock": "aws",
    "amazonbedrock": "aws",
    "amazon-bedrock": "aws",
    "bedrock-mantle": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "vertex": "google",
    "googlevertex": "google",
    "gemini": "google",
    "google": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "perplexity": "perplexity",
}


def billing_provider(name: str) -> str:
    """The catalog's provider id for a span's provider name (unknown names pass through)."""
    lowered = name.lower()
    found = PROVIDERS.get(lowered)
    if found is None and "." in lowered:
        # AI SDK ids name the API after a dot (`openai.responses`, `google.vertex.chat`).
        found = PROVIDERS.get(lowered.split(".", 1)[0])
    return name if found is None else found
