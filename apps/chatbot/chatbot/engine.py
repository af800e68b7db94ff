"""The language model: a base model plus an optional PEFT adapter (or a merged model), offline.

Generation runs in a thread of its own, one at a time (a lock per model): text pieces, then one
`Outcome`, go to a sink the caller gives (the API hands them to its event loop). A deadline and
an abort flag stop generation between tokens, so a timed-out or abandoned request frees the model.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("chatbot.engine")

FinishReason = Literal["stop", "length", "timeout", "error", "cancelled"]


class LoadError(RuntimeError):
    """The model, adapter or collection cannot be loaded; the message says which and what to set."""


@dataclass(frozen=True)
class GenerationParams:
    """How to sample one completion."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class Outcome:
    """The end of one generation: token counts and why it ended (`error` names an exception type)."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason
    error: str | None = None


Event = str | Outcome
Sink = Callable[[Event], None]


@dataclass
class LanguageModel:
    """A loaded causal LM and its tokenizer; `start` runs one generation in the background."""

    model: Any
    tokenizer: Any
    adapter: str | None
    quantized: bool
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def max_positions(self) -> int | None:
        """Context length of the model, when its config says."""
        value = getattr(self.model.config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) else None

    def render(self, messages: list[dict[str, str]]) -> str:
        """The exact text the model sees: the tokenizer's chat template (the system message folded
        into the first user message for templates that refuse a system role), else a plain transcript."""
        if not getattr(self.tokenizer, "chat_template", None):
            lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
            return "\n\n".join([*lines, "Assistant:"])
        from jinja2 import TemplateError

        try:
            return self._apply_template(messages)
        except TemplateError:
            if not messages or messages[0]["role"] != "system":
                raise
            return self._apply_template(fold_system(messages))

    def _apply_template(self, messages: list[dict[str, str]]) -> str:
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def encode(self, prompt: str) -> Any:
        """Token ids of a rendered prompt (the chat template already holds the special tokens)."""
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        return self.tokenizer(prompt, return_tensors="pt", add_special_tokens=not has_template)

    def start(self, inputs: Any, params: GenerationParams, *, deadline: float, sink: Sink) -> Generation:
        """Begin generating from `inputs` (from `encode`) in a thread; events go to `sink`."""
        generation = Generation(self, inputs, params, deadline, sink)
        generation.thread.start()
        return generation


class Generation:
    """One generation in its thread; `cancel` ends it at the next token."""

    def __init__(self, lm: LanguageModel, inputs: Any, params: GenerationParams, deadline: float, sink: Sink) -> None:
        self.lm, self.inputs, self.params, self.deadline, self.sink = lm, inputs, params, deadline, sink
        self.aborted = threading.Event()
        self.thread = threading.Thread(target=self._run, name="generate", daemon=True)

    @property
    def prompt_tokens(self) -> int:
        return int(self.inputs["input_ids"].shape[1])

    def cancel(self) -> None:
        self.aborted.set()

    def _run(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not self.lm.lock.acquire(timeout=min(remaining, threading.TIMEOUT_MAX)):
            self.sink(Outcome(self.prompt_tokens, 0, "timeout"))
            return
        try:  # a request abandoned while it waited for the model does not generate at all
            outcome = Outcome(self.prompt_tokens, 0, "stop") if self.aborted.is_set() else self._generate()
        except Exception as exc:  # reported as the outcome; the prompt is never logged
            log.exception("generation failed", extra={"error_type": type(exc).__name__})
            outcome = Outcome(self.prompt_tokens, 0, "error", type(exc).__name__)
        finally:
            self.lm.lock.release()
        self.sink(outcome)

    def _generate(self) -> Outcome:
        import torch
        from transformers import StoppingCriteriaList

        stop = _stop_criteria(self.deadline, self.aborted)
        kwargs = {
            **self.inputs.to(self.lm.model.device),
            **sampling_kwargs(self.params, self.lm.tokenizer),
            "streamer": _sink_streamer(self.lm.tokenizer, self.sink),
            "stopping_criteria": StoppingCriteriaList([stop]),
        }
        if self.params.seed is not None:
            torch.manual_seed(self.params.seed)
        with torch.inference_mode():
            ids = self.lm.model.generate(**kwargs)
        completion = int(ids.shape[1]) - self.prompt_tokens
        return Outcome(self.prompt_tokens, completion, self._finish(stop, ids, completion))

    def _finish(self, stop: Any, ids: Any, completion: int) -> FinishReason:
        if stop.timed_out:
            return "timeout"
        eos = self.lm.tokenizer.eos_token_id
        if self.aborted.is_set() or (completion and int(ids[0, -1]) == eos):
            return "stop"
        return "length" if completion >= self.params.max_new_tokens else "stop"


def fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """`messages` without the leading system message, its text put before the first user message's."""
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    for message in rest:
        if message["role"] == "user":
            message["content"] = f"{system}\n\n{message['content']}"
            break
    return rest


def sampling_kwargs(params: GenerationParams, tokenizer: Any) -> dict[str, Any]:
    """Greedy at temperature 0, sampling otherwise; pad with EOS when the tokenizer has no pad token."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "do_sample": params.temperature > 0}
    if params.temperature > 0:
        kwargs |= {"temperature": params.temperature, "top_p": params.top_p}
    return kwargs | {"pad_token_id": pad}


def _stop_criteria(deadline: float, aborted: threading.Event) -> Any:
    import torch
    from transformers import StoppingCriteria

    class Stop(StoppingCriteria):  # type: ignore[misc]
        timed_out = False

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            self.timed_out = self.timed_out or time.monotonic() > deadline
            done = self.timed_out or aborted.is_set()
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return Stop()


def _sink_streamer(tokenizer: Any, sink: Sink) -> Any:
    from transformers import TextStreamer

    class SinkStreamer(TextStreamer):  # type: ignore[misc]
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                sink(text)

    return SinkStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def load_language_model(
    model_path: Path, adapter_path: Path | None, *, load_4bit: bool, merge_adapter: bool
) -> LanguageModel:
    """The base model from `model_path` with the adapter from `adapter_path` applied (offline)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.disable_default_handler()  # its records go to the root logger's JSON handler instead
    hf_logging.enable_propagation()
    _require_folder(model_path, "CHATBOT_MODEL_PATH", "config.json")
    kwargs, quantized = device_kwargs(load_4bit=load_4bit)
    model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True, **kwargs)
    tokenizer_folder = model_path
    if adapter_path is not None:
        _require_folder(adapter_path, "CHATBOT_ADAPTER_PATH", "adapter_config.json")
        model = apply_adapter(model, adapter_path, merge=merge_adapter and not quantized)
        if (adapter_path / "tokenizer_config.json").is_file():
            tokenizer_folder = adapter_path
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder, local_files_only=True)
    adapter = adapter_path.name if adapter_path is not None else None
    return LanguageModel(model=model, tokenizer=tokenizer, adapter=adapter, quantized=quantized)


def apply_adapter(model: Any, adapter_path: Path, *, merge: bool) -> Any:
    """`model` with the PEFT adapter loaded (for inference), folded into its weights when `merge`."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, adapter_path, is_trainable=False)
    return peft_model.merge_and_unload() if merge else peft_model


def device_kwargs(*, load_4bit: bool) -> tuple[dict[str, Any], bool]:
    """`from_pretrained` arguments for this machine, and whether they quantise to 4-bit."""
    import torch

    if not torch.cuda.is_available():
        if load_4bit:
            log.warning("4-bit loading asked for but no CUDA GPU is visible: loading in full precision")
        return {"dtype": torch.float32}, False
    if not load_4bit:
        return {"dtype": torch.bfloat16, "device_map": {"": 0}}, False
    if importlib.util.find_spec("bitsandbytes") is None:
        raise LoadError("CHATBOT_LOAD_4BIT needs bitsandbytes: build the GPU image (requirements-gpu.txt)")
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    return {"quantization_config": quant, "device_map": {"": 0}}, True


def _require_folder(folder: Path, setting: str, marker: str) -> None:
    if not (folder / marker).is_file():
        raise LoadError(f"{setting}={folder} has no {marker}: mount the model folder there")
