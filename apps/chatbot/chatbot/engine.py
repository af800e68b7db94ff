"""The language model: a base model plus an optional PEFT adapter (or a merged model), offline.

Requests are gathered into batches (`batching.Scheduler`, one worker thread per model): those
that arrive within a short window and sample alike run as one left-padded `model.generate`
(`padded.generate_padded`), and requests arriving meanwhile join the next batch; a batch that has
just begun gives way to at least as many newcomers, its rows joining them with their tokens so far
(`padded.gives_way`). Each request keeps its own stream of text pieces, then one `Outcome`, sent to a
sink the caller gives (the API hands them to its event loop); its own length, deadline and abort flag
stop its row between tokens.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from appkit.adapters import apply_adapter
from appkit.budget import Counter, tokenizer_counter

from chatbot.batching import BatchConfig, Scheduler, Ticket
from chatbot.padded import FinishReason, Progress, generate_padded

log = logging.getLogger("chatbot.engine")

ENCODED_PROMPTS = 64
"""Rendered prompts whose token ids are kept: the budget's final count and generation encode once
(a few per request in flight; read-only tensors)."""


class LoadError(RuntimeError):
    """The model, adapter or collection cannot be loaded; the message says which and what to set."""


@dataclass(frozen=True)
class GenerationParams:
    """How to sample one completion."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    """Stop sequences: an upstream engine passes them on; in-process the API's `StopScanner` applies them."""
    live: bool = True
    """Text pieces as they are generated; False: the whole text once, at the end (an answer that is not
    streamed and has no stop sequence to watch for: in-process, no text is decoded or handed over per token)."""
    ignore_eos: bool = False
    """Go on past end-of-sequence to `max_new_tokens` (vLLM's `ignore_eos`: fixed-length answers for benchmarks)."""


@dataclass(frozen=True)
class Prompt:
    """Rendered messages as an engine takes them: `text` for the logs, `tokens` when counted locally,
    `inputs` the engine's own (token ids in-process)."""

    messages: list[dict[str, str]]
    text: str
    tokens: int | None
    inputs: Any = None


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
    """A loaded causal LM and its tokenizer; `start` queues one generation for the next batch."""

    model: Any
    tokenizer: Any
    adapter: str | None
    quantized: bool
    batching: BatchConfig = field(default_factory=BatchConfig)
    scheduler: Scheduler[Generation] = field(init=False, repr=False, compare=False)
    _encoded: Callable[[str], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._encoded = lru_cache(maxsize=ENCODED_PROMPTS)(self.encode)
        self.scheduler = Scheduler(self.run_batch, self.batching)

    @property
    def max_positions(self) -> int | None:
        """Context length of the model, when its config says."""
        value = getattr(self.model.config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) else None

    def render(self, messages: list[dict[str, str]]) -> str:
        """The exact text the model sees (`render_chat`)."""
        return render_chat(self.tokenizer, messages)

    def counter(self) -> Counter:
        """Counts tokens as this model reads them (for the context budget). Messages are encoded as
        `prompt` encodes them, and kept: the prompt the budget settles on is encoded once."""
        count_text = tokenizer_counter(self.tokenizer, self.render)

        def count(item: str | Sequence[Mapping[str, str]]) -> int:
            if isinstance(item, str):
                return count_text(item)
            return int(self._encoded(self.render([dict(m) for m in item]))["input_ids"].shape[1])

        return count

    def prompt(self, messages: list[dict[str, str]]) -> Prompt:
        """`messages` rendered by the chat template and encoded (blocking; the last few prompts' ids are kept)."""
        text = self.render(messages)
        inputs = self._encoded(text)
        return Prompt(messages, text, int(inputs["input_ids"].shape[1]), inputs)

    def coming(self) -> Ticket:
        """Announce a request that will call `generate` soon (`batching.Scheduler.coming`)."""
        return self.scheduler.coming()

    def generate(
        self, prompt: Prompt, params: GenerationParams, *, deadline: float, sink: Sink, ticket: Ticket | None = None
    ) -> Generation:
        """The engine protocol's `generate` (`engines.Engine`): `start` on the prompt's token ids."""
        return self.start(prompt.inputs, params, deadline=deadline, sink=sink, ticket=ticket)

    def encode(self, prompt: str) -> Any:
        """Token ids of a rendered prompt (the chat template already holds the special tokens)."""
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        return self.tokenizer(prompt, return_tensors="pt", add_special_tokens=not has_template)

    def start(
        self, inputs: Any, params: GenerationParams, *, deadline: float, sink: Sink, ticket: Ticket | None = None
    ) -> Generation:
        """Queue a generation from `inputs` (from `encode`) for the next batch, releasing its `ticket`
        (from `coming`); events go to `sink`."""
        generation = Generation(inputs, params, deadline, sink)
        self.scheduler.submit(generation, ticket)
        return generation

    def run_batch(self, batch: list[Generation]) -> None:
        """Generate for one batch (on the scheduler's thread); its requests share their sampling settings."""
        import torch

        params, key = batch[0].params, batch[0].batch_key  # `self.batching.engine` is "padded" (`BatchEngine`)
        if params.seed is not None:  # a seeded request runs alone, so its answer is reproducible
            torch.manual_seed(params.seed)
        sampling, waiting = sampling_kwargs(params, self.tokenizer), partial(self.scheduler.waiting, key)
        self.scheduler.requeue(generate_padded(self.model, self.tokenizer, batch, sampling=sampling, waiting=waiting))


class Generation:
    """One request: queued, then a row of a batch; `cancel` stops its row at the next token."""

    def __init__(self, inputs: Any, params: GenerationParams, deadline: float, sink: Sink) -> None:
        self.params, self.deadline, self.sink = params, deadline, sink
        self.live = params.live
        self.prompt_ids: list[int] = [int(i) for i in inputs["input_ids"][0].tolist()]
        self.progress = Progress()
        self.aborted = threading.Event()
        self.arrived = time.monotonic()
        self.outcome: Outcome | None = None
        self.done = threading.Event()

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    @property
    def max_new_tokens(self) -> int:
        return self.params.max_new_tokens

    @property
    def ignore_eos(self) -> bool:
        return self.params.ignore_eos

    @property
    def batch_key(self) -> Hashable | None:
        """Requests that sample alike share a batch; a seeded one runs alone (None)."""
        if self.params.seed is not None:
            return None
        if self.params.temperature <= 0:
            return ("greedy",)
        return ("sample", self.params.temperature, self.params.top_p)

    def cancel(self) -> None:
        self.aborted.set()

    def settle(self, now: float) -> bool:
        """End without generating when abandoned or out of time while queued; whether it did."""
        if self.aborted.is_set():
            self.finish(len(self.progress.tokens), "stop")
        elif now > self.deadline:
            self.finish(len(self.progress.tokens), "timeout")
        return self.outcome is not None

    def emit(self, text: str) -> None:
        if text and self.outcome is None:
            self.sink(text)

    def finish(self, completion_tokens: int, reason: FinishReason, error: str | None = None) -> None:
        """Send the outcome (once)."""
        if self.outcome is not None:
            return
        self.outcome = Outcome(self.prompt_tokens, completion_tokens, reason, error)
        self.sink(self.outcome)
        self.done.set()


def render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The tokenizer's chat template over `messages` (the system message folded into the first user
    message for templates that refuse a system role), else a plain transcript."""
    if not getattr(tokenizer, "chat_template", None):
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join([*lines, "Assistant:"])
    from jinja2 import TemplateError

    def apply(chat: list[dict[str, str]]) -> str:
        return str(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))

    try:
        return apply(messages)
    except TemplateError:
        if not messages or messages[0]["role"] != "system":
            raise
        return apply(fold_system(messages))


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


def load_language_model(
    model_path: Path,
    adapter_path: Path | None,
    *,
    load_4bit: bool,
    merge_adapter: bool,
    batching: BatchConfig | None = None,
) -> LanguageModel:
    """The base model from `model_path` with the adapter from `adapter_path` applied (offline);
    requests are gathered into batches as `batching` says (the defaults when None)."""
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
    return LanguageModel(model, tokenizer, adapter, quantized, batching or BatchConfig())


def device_kwargs(*, load_4bit: bool) -> tuple[dict[str, Any], bool]:
    """`from_pretrained` arguments for this machine, and whether they quantise to 4-bit."""
    import torch

    if not torch.cuda.is_available():
        if load_4bit:  # never a silent fp32 model on the CPU, 8 times the memory the deploy planned for
            raise LoadError(
                "CHATBOT_LOAD_4BIT=true but no CUDA GPU is visible (torch "
                f"{torch.__version__}): run the GPU image with --gpus all, or set CHATBOT_LOAD_4BIT=false"
            )
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
