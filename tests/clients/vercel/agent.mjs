// The Vercel AI SDK agent of tests/test_clients.py: one generateText run with a tool, through
// @ai-sdk/openai against the fake provider, its spans exported over OTLP/HTTP by the
// OpenTelemetry Node SDK. Configured by the environment, like the Python agents beside it:
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_RESOURCE_ATTRIBUTES,
// FAKE_PROVIDER_URL, AGENT_CUSTOMER_ON ("resource" or "metadata") and AGENT_CUSTOMER.
// Prints {"trace_ids": [...]} on stdout.
import { NodeSDK } from "@opentelemetry/sdk-node";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { trace } from "@opentelemetry/api";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, tool } from "ai";

const sdk = new NodeSDK({ traceExporter: new OTLPTraceExporter() });
sdk.start();

const openai = createOpenAI({ baseURL: `${process.env.FAKE_PROVIDER_URL}/v1`, apiKey: "sk-fake" });
const metadata = { "payoff.task_type": "support.ticket" };
if (process.env.AGENT_CUSTOMER_ON === "metadata") {
  metadata["payoff.customer"] = process.env.AGENT_CUSTOMER;
}

const traceIds = [];
const lookupOrder = tool({
  description: "Look an order up by its id",
  inputSchema: jsonSchema({
    type: "object",
    properties: { order_id: { type: "string" } },
    required: ["order_id"],
  }),
  execute: async ({ order_id }) => {
    traceIds.push(trace.getActiveSpan()?.spanContext().traceId);
    return { order_id, status: "shipped" };
  },
});

await generateText({
  model: openai("gpt-5-mini"), // the Responses API, @ai-sdk/openai's default
  prompt: "Where is my order A-1234? Make a plan.",
  tools: { lookup_order: lookupOrder },
  stopWhen: stepCountIs(3),
  experimental_telemetry: { isEnabled: true, functionId: "support", metadata },
});
await sdk.shutdown();
console.log(JSON.stringify({ trace_ids: [...new Set(traceIds)] }));
