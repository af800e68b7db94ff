"""Local transformers backend: models from the HF cache (or a folder), PEFT adapters loaded unmerged.

Loaded models stay in memory between turns, keyed by (model folder, 4-bit): the folder of a
cache snapshot names its commit, so the key is (model, revision, 4-bit). Adapters attach to that
one base by name (`load_adapter` / `set_adapter`); a base variant generates inside
`disable_adapter()`, so base and adapter variants share one copy of the weights. A lock per base
serialises generation on it, because the active adapter is state of the shared model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.chat.variant import Variant
from services.errors import ChatBackendError, NextStep, NotFoundError, WorkbenchError
from services.progress import CancelToken

Messages = list[dict[str, str]]


@dataclass
class LoadedModel:
    """One base model in memory and the adapters attached to it."""

    path: Path
    revision: str
    model: Any
    tokenizer: Any
    peft: Any = None
    adapters: dict[str, tuple[str, int]] = field(default_factory=dict)  # folder -> (name, stamp)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Generated:
    """What the backend sent and produced, after the streamed pieces."""

    prompt: str
    tokens: int
    error: str | None = None


HANDOFF_INTERVAL_S = 0.05
"""How often generated text reaches the consumer: the TUI redraws an answer at most this often anyway."""


def resolve_model(model: str | None, revision: str | None, *, cache_dir: Path) -> tuple[Path, str]:
    """(folder, revision) of a local model: a folder as given, or a snapshot in the HF cache."""
    if not model:
        raise ChatBackendError("variant has no model", hint="set model to an HF cache repo id or a folder")
    local = Path(model).expanduser()
    if local.is_dir():
        return local, "local"
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(model, revision=revision, cache_dir=cache_dir, local_files_only=True))
    except Exception:
        raise NotFoundError(
            f"model '{model}' (revision {revision or 'main'}) is not in the HF cache {cache_dir}",
            step=NextStep.of("models.download", repo=model),
        ) from None
    return folder, folder.name


def adapter_version(folder: Path) -> str:
    """Short sha256 of the adapter's weights: changes whenever the adapter is retrained."""
    weights = _adapter_weights(folder)
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:12]


def _adapter_weights(folder: Path) -> Path:
    if not (folder / "adapter_config.json").is_file():
        raise NotFoundError(
            f"adapter {folder} has no adapter_config.json", hint="point adapter at a PEFT adapter folder"
        )
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise NotFoundError(f"adapter {folder} has no adapter_model weights", hint="is the fine-tune finished?")


HoldGpu = Callable[[str], Any]
"""Registers a model loaded on GPU 0 in the machine's GPU queue (returns a hold with `release()`, or None)."""


class LocalModels:
    """Loaded bases by key; `base_loads` counts real loads (tests assert sharing with it).

    `hold_gpu`: called before a model loads onto the GPU, so that no colleague's fine-tune starts
    into its memory; the hold ends when the models are closed.
    """

    def __init__(self, *, cache_dir: Path, hold_gpu: HoldGpu | None = None) -> None:
        self.cache_dir = cache_dir
        self.base_loads = 0
        self._loaded: dict[tuple[str, bool], LoadedModel] = {}
        self._lock = threading.Lock()
        self._hold_gpu = hold_gpu
        self._holds: list[Any] = []

    def get(self, variant: Variant) -> LoadedModel:
        """The loaded base for a variant, with its adapter attached (loads on first use)."""
        path, revision = resolve_model(variant.model, variant.revision, cache_dir=self.cache_dir)
        key = (str(path.resolve()), variant.load_4bit)
        with self._lock:
            if key not in self._loaded:
                self._hold_for(variant)
                self._loaded[key] = _load(path, revision, variant.load_4bit)
                self.base_loads += 1
            loaded = self._loaded[key]
        if variant.adapter:
            with loaded.lock:
                attach_adapter(loaded, Path(variant.adapter).expanduser())
        return loaded

    def close(self) -> None:
        with self._lock:
            self._loaded.clear()
            for hold in self._holds:
                hold.release()
            self._holds.clear()

    def _hold_for(self, variant: Variant) -> None:
        if self._hold_gpu is None or not on_gpu(variant.load_4bit):
            return
        try:
            hold = self._hold_gpu(variant.model or "model")
        except WorkbenchError as exc:
            raise ChatBackendError(f"cannot load onto the GPU: {exc.message}", hint=exc.hint) from None
        if hold is not None:
            self._holds.append(hold)


def on_gpu(load_4bit: bool) -> bool:
    """Whether a model would load onto GPU 0."""
    import torch

    return load_4bit or torch.cuda.is_available()


def _load(path: Path, revision: str, load_4bit: bool) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    kwargs: dict[str, Any] = {}
    if load_4bit:
        kwargs = _four_bit_kwargs()
    elif torch.cuda.is_available():
        kwargs = {"dtype": torch.bfloat16, "device_map": {"": 0}}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.eval()
    return LoadedModel(path, revision, model, AutoTokenizer.from_pretrained(path))


def _four_bit_kwargs() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        raise ChatBackendError("4-bit loading needs a CUDA GPU and none is visible", hint="set load_4bit: false")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ChatBackendError("4-bit loading needs bitsandbytes", hint="pip install 'llm-workbench[gpu]'")
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    return {"quantization_config": quant, "device_map": {"": 0}}


def attach_adapter(loaded: LoadedModel, folder: Path) -> str:
    """Load an adapter onto the shared base unmerged (once per folder and weights file); its name."""
    key = str(folder.resolve())
    stamp = _adapter_weights(folder).stat().st_mtime_ns
    known = loaded.adapters.get(key)
    if known and known[1] == stamp:
        return known[0]
    name = f"adapter{len(loaded.adapters)}_{stamp % 100000}"
    from appkit.adapters import peft_warnings_understood

    if loaded.peft is None:
        from peft import PeftModel

        with peft_warnings_understood():
            loaded.peft = PeftModel.from_pretrained(loaded.model, folder, adapter_name=name, is_trainable=False)
    else:
        if known:
            loaded.peft.delete_adapter(known[0])
        with peft_warnings_understood():
            loaded.peft.load_adapter(folder, adapter_name=name, is_trainable=False)
    loaded.peft.eval()
    loaded.adapters[key] = (name, stamp)
    return name


def active(loaded: LoadedModel, adapter: str | None) -> tuple[Any, AbstractContextManager[Any]]:
    """The model to call and the context that selects the variant's adapter (or none) on it."""
    if loaded.peft is None:
        return loaded.model, nullcontext()
    if adapter is None:
        return loaded.peft, loaded.peft.disable_adapter()
    loaded.peft.set_adapter(attach_adapter(loaded, Path(adapter).expanduser()))
    return loaded.peft, nullcontext()


def chat_prompt(tokenizer: Any, messages: Messages) -> str:
    """The exact text the model sees: the tokenizer's chat template, else a plain transcript."""
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*lines, "Assistant:"])


def _stop_criteria(cancel: CancelToken, deadline: float) -> Any:
    """A StoppingCriteria that stops on cancel, on `abort` (consumer gone) or past the deadline."""
    import torch
    from transformers import StoppingCriteria

    class Stop(StoppingCriteria):  # type: ignore[misc]
        def __init__(self) -> None:
            self.abort, self.timed_out = False, False

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            self.timed_out = time.monotonic() > deadline
            stop = cancel.cancelled or self.abort or self.timed_out
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return Stop()


def coalescing_streamer(tokenizer: Any, *, timeout_s: float, interval_s: float = HANDOFF_INTERVAL_S) -> Any:
    """A TextIteratorStreamer that hands text over at once for the first piece, then at most every
    `interval_s`: each handoff wakes the consumer thread, which takes the GIL from generation."""
    from transformers import TextIteratorStreamer

    class CoalescingStreamer(TextIteratorStreamer):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=timeout_s)
            self.held, self.handed_at = "", 0.0

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            self.held += text
            now = time.monotonic()
            if stream_end or (self.held and now - self.handed_at >= interval_s):
                super().on_finalized_text(self.held, stream_end)
                self.held, self.handed_at = "", now

    return CoalescingStreamer()


def generate_stream(
    loaded: LoadedModel, variant: Variant, messages: Messages, cancel: CancelToken
) -> Iterator[str | Generated]:
    """Text pieces as the model produces them, then one `Generated`."""
    from transformers import StoppingCriteriaList

    tokenizer = loaded.tokenizer
    prompt = chat_prompt(tokenizer, messages)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=not has_template)
    streamer = coalescing_streamer(tokenizer, timeout_s=variant.timeout_s)
    stop = _stop_criteria(cancel, time.monotonic() + variant.timeout_s)
    outcome: dict[str, Any] = {}
    with loaded.lock:
        model, context = active(loaded, variant.adapter)
        inputs = inputs.to(model.device)
        kwargs = {**inputs, **generation_kwargs(variant, tokenizer), "streamer": streamer}
        kwargs["stopping_criteria"] = StoppingCriteriaList([stop])
        with context:
            worker = threading.Thread(target=_run, args=(model, kwargs, variant.params.seed, streamer, outcome))
            worker.start()
            try:
                yield from (piece for piece in streamer if piece)
            finally:
                stop.abort = True  # the consumer left early (or the stream broke): end generation
                worker.join()
    yield _generated(prompt, inputs["input_ids"].shape[1], outcome, stop, variant.timeout_s)


def _run(model: Any, kwargs: dict[str, Any], seed: int, streamer: Any, outcome: dict[str, Any]) -> None:
    import torch

    try:
        torch.manual_seed(seed)
        with torch.inference_mode():
            outcome["ids"] = model.generate(**kwargs)
    except Exception as exc:  # reported in the Answer, never raised into the consumer
        outcome["error"] = f"{type(exc).__name__}: {exc}"
        streamer.end()


def generation_kwargs(variant: Variant, tokenizer: Any) -> dict[str, Any]:
    """Greedy at temperature 0, sampling otherwise; pad with EOS when the tokenizer has no pad token."""
    params = variant.params
    kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "do_sample": params.temperature > 0}
    if params.temperature > 0:
        kwargs |= {"temperature": params.temperature, "top_p": params.top_p}
    kwargs["pad_token_id"] = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return kwargs


def _generated(prompt: str, prompt_len: int, outcome: dict[str, Any], stop: Any, timeout_s: float) -> Generated:
    tokens = int(outcome["ids"].shape[1] - prompt_len) if "ids" in outcome else 0
    error = outcome.get("error")
    if error is None and stop.timed_out:
        error = f"timed out after {timeout_s:g} s"
    return Generated(prompt, tokens, error)
