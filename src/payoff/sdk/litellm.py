"""LiteLLM: meter every call made through LiteLLM with one line.

    import litellm
    from payoff.sdk.litellm import PayoffCallback
    litellm.callbacks = [PayoffCallback(meter, customer="acme")]

Each successful call (streamed ones once complete) is recorded into the task of the
`with meter.task(...)` block it was made in (noted before the call, by its LiteLLM call id,
since LiteLLM reports a finished stream from a thread of its own), or else into a task of
its own, completed at once, for the `customer` given here.
LiteLLM hands every provider's usage over in OpenAI's chat format, with cached tokens inside
`prompt_tokens` (and audio, image and video tokens and web searches among its details). The
provider is LiteLLM's `custom_llm_provider`; the model is the one the provider answered
(`gpt-5-2025-08-07`), which is what it bills, not the alias asked for (`gpt-5`).

A call's answer is marked visible (what the end user sees) with LiteLLM's own metadata:

    litellm.completion(model=..., messages=..., metadata={"payoff_visible": True})

or every call at once with `PayoffCallback(..., visible=True)`.

LiteLLM calls callbacks after the call has returned, on its own threads, and swallows what
they raise: a BudgetExceeded there is logged, not raised into the agent. Call
`task.check()` before a model call to stop on an enforced budget.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from payoff.core.errors import BudgetExceeded, PayoffError
from payoff.sdk.meter import Meter
from payoff.sdk.task import Task, current_task

logger = logging.getLogger("payoff.sdk")

# LiteLLM's provider names where payoff's records (and genai-prices) use another.
_PROVIDERS = {"gemini": "google", "vertex_ai": "google", "vertex_ai_beta": "google"}

VISIBLE_METADATA_KEY = "payoff_visible"
"""The key of LiteLLM's `metadata` that marks one call's answer visible (or not)."""

MAX_CALLS_IN_FLIGHT = 10_000
"""Calls remembered between their start and their end; past it the oldest are forgotten
(a call that never reports its end must not grow memory for ever)."""


class PayoffCallback(CustomLogger):
    """A LiteLLM custom callback that records each successful call's usage."""

    def __init__(
        self,
        meter: Meter,
        *,
        customer: str | None = None,
        task_type: str | None = None,
        visible: bool = False,
    ) -> None:
        super().__init__()
        self.meter = meter
        # LiteLLM keeps one callback per class and public str/int attributes; this keeps the
        # callbacks of two Meters apart.
        self.meter_id = id(meter)
        self.customer = customer
        self.task_type = task_type
        self.visible = visible
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._lock = threading.Lock()

    def log_pre_api_call(self, model: str, messages: Any, kwargs: dict[str, Any]) -> None:
        # Runs in the caller's thread and context, where the current task is known.
        task, call_id = current_task(), kwargs.get("litellm_call_id")
        if task is None or not call_id:
            return
        with self._lock:
            self._tasks[str(call_id)] = task
            while len(self._tasks) > MAX_CALLS_IN_FLIGHT:
                self._tasks.popitem(last=False)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._task_of(kwargs)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._task_of(kwargs)

    def _task_of(self, kwargs: dict[str, Any]) -> Task | None:
        with self._lock:
            task = self._tasks.pop(str(kwargs.get("litellm_call_id")), None)
        return task or current_task()

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs, response_obj)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs, response_obj)

    def _record(self, kwargs: dict[str, Any], response: Any) -> None:
        provider = str(kwargs.get("custom_llm_provider") or "openai")
        fields: dict[str, Any] = {
            "usage_format": "openai.chat",
            "provider": _PROVIDERS.get(provider, provider),
            "model": _model(kwargs, response, provider),
            "visible": _visible(kwargs, self.visible),
        }
        task = self._task_of(kwargs)
        try:
            if task is not None:
                task.record(response, **fields)
            elif self.customer is not None:
                with self.meter.task(self.customer, self.task_type) as own:
                    own.record(response, **fields)
            else:
                logger.warning(
                    "payoff: a LiteLLM call outside any task, and no default customer: "
                    "not recorded (give PayoffCallback(customer=...))"
                )
        except BudgetExceeded as exc:
            logger.warning("payoff: %s (the call was recorded)", exc)
        except PayoffError:
            logger.exception("payoff: could not record a LiteLLM call")


def _model(kwargs: dict[str, Any], response: Any, provider: str) -> str | None:
    """The model the provider answered, as it names it (what it bills: a dated snapshot
    such as `gpt-5-2025-08-07`), else the one asked for. LiteLLM's names may carry the
    `provider/` prefix; the provider's own do not."""
    for model in (getattr(response, "model", None), kwargs.get("model")):
        if isinstance(model, str) and model:
            return model.removeprefix(f"{provider}/")
    return None


def _visible(kwargs: dict[str, Any], default: bool) -> bool:
    """Whether the call was marked visible in its metadata; the callback's default if not."""
    params = kwargs.get("litellm_params")
    metadata = params.get("metadata") if isinstance(params, dict) else None
    if isinstance(metadata, dict) and VISIBLE_METADATA_KEY in metadata:
        return bool(metadata[VISIBLE_METADATA_KEY])
    return default
