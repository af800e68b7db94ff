"""The demo workspace: real, tiny, offline things for every mode to act on.

`init_demo` places a tiny Llama-architecture model (seeded random weights, a BPE tokenizer
trained on the demo corpus; the same bytes on every machine) and the packaged all-MiniLM-L6-v2
embedding model into the HF cache layout, so `from_pretrained` finds both offline, and writes an
instruction dataset and RAG documents into the workspace. It is idempotent: a second run finds
everything in place and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cache import cached_snapshot
from services.rag.embeddings import packaged_minilm

if TYPE_CHECKING:
    from services.finetune.spec import JobSpec

DEMO_MODEL = "workbench-demo/tiny-llama"
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEMO_SEED = 1234
INJECTION_DOCUMENT = "07-vendor-note.md"
"""A demo document carrying an indirect prompt injection (the sample suite checks it is ignored)."""


@dataclass(frozen=True)
class DemoWorkspace:
    """What `init_demo` made (stable keys: `workbench demo init --json` prints this)."""

    model: str
    embedding_model: str
    cache_dir: str
    model_path: str
    embedding_model_path: str
    dataset: str
    documents: str
    finetune_job: str
    suite: str
    created: list[str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def init_demo(*, cache_dir: Path, data_dir: Path) -> DemoWorkspace:
    """Create the demo model, embedding model, dataset and documents where they are missing."""
    created: list[str] = []
    model_path = cached_snapshot(cache_dir, DEMO_MODEL)
    if model_path is None:
        with tempfile.TemporaryDirectory() as tmp:
            build_tiny_llama(Path(tmp))
            model_path = place_in_cache(cache_dir, DEMO_MODEL, Path(tmp))
        created.append(DEMO_MODEL)
    embed_path = cached_snapshot(cache_dir, EMBEDDING_MODEL)
    if embed_path is None:
        embed_path = place_in_cache(cache_dir, EMBEDDING_MODEL, packaged_minilm())
        created.append(EMBEDDING_MODEL)
    demo_dir = data_dir / "demo"
    dataset, documents = demo_dir / "instructions.jsonl", demo_dir / "documents"
    created += _write_data(dataset, documents)
    job = demo_dir / "finetune-demo.toml"
    if not job.exists():
        job.write_text(demo_job_toml(dataset, Path(model_path)))
        created.append(str(job))
    suite = demo_dir / "suite.yaml"
    if not suite.exists():
        shutil.copyfile(_demo_data("suite.yaml"), suite)
        created.append(str(suite))
    return DemoWorkspace(
        model=DEMO_MODEL,
        embedding_model=EMBEDDING_MODEL,
        cache_dir=str(cache_dir),
        model_path=str(model_path),
        embedding_model_path=str(embed_path),
        dataset=str(dataset),
        documents=str(documents),
        finetune_job=str(job),
        suite=str(suite),
        created=created,
    )


def demo_job_toml(dataset: Path, model_folder: Path | None) -> str:
    """The demo fine-tune as commented TOML, headed by what it shows."""
    from services.finetune.template import commented_toml

    title, fields = commented_toml(demo_spec(dataset, model_folder)).split("\n", 1)
    return f"{title}\n{DEMO_JOB_HEADER}{fields}"


def demo_spec(dataset: Path, model_folder: Path | None) -> JobSpec:
    """The demo fine-tune: the demo model's defaults with `DEMO_JOB` over them."""
    from services.finetune.spec import JobSpec
    from services.finetune.template import default_spec

    spec = default_spec(DEMO_MODEL, str(dataset), model_folder=model_folder).model_dump(mode="json")
    for section, values in DEMO_JOB.items():
        spec[section] = {**spec[section], **values} if isinstance(values, dict) else values
    return JobSpec.model_validate(spec)


def is_demo_dataset(dataset: str | Path) -> bool:
    """Whether `dataset` is the demo's instructions file (`demo init` writes it to DATA_DIR/demo)."""
    path = Path(dataset)
    return path.name == "instructions.jsonl" and path.parent.name == "demo"


DEMO_JOB_NAME = "demo-tiny-llama"
DEMO_PROMPT = "<|user|>\n{instruction} {input}</s>\n<|assistant|>\n"
"""The chat template's rendering of one user turn, so the tuned model answers the Playground's and
the suite's questions ("{instruction} {input}", no system prompt) in the format it was trained on."""

DEMO_JOB: dict[str, object] = {
    "name": DEMO_JOB_NAME,
    "dataset": {"prompt_template": DEMO_PROMPT},
    "lora": {
        "r": 16,
        "alpha": 32,
        "dropout": 0.0,
        "target_modules": [
            *("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
            *("embed_tokens", "lm_head"),
        ],
    },
    "training": {
        "learning_rate": 8e-3,
        "max_steps": 500,
        "micro_batch_size": 32,
        "max_seq_length": 128,
        "save_every": 250,
        "eval_every": 50,
    },
}
"""What the demo job changes from the defaults, so that the tiny random model reproduces the rows it
trains on in half a minute to two minutes on two CPU cores (README, "The demo learns"). The embedding and head
adapters matter most: the head is tied to random embeddings at a 0.02 scale, so adapters on the
attention and MLP layers alone leave every token nearly as likely as any other (loss 5.7 after
1,000 steps). The two need adapters of their own: tied ones (peft's `ensure_weight_tying`) got 6 of
24 rows right after 1,000 steps where these get 24 of 24 after 500. `services.finetune.merge`
unties the head so each adapter merges into its own layer."""

DEMO_JOB_HEADER = """\
#
# The demo fine-tune (written by `workbench demo init`): LoRA on every linear layer plus the
# embeddings and the output head, a high learning rate and 500 steps of 32 rows (about 75 passes
# over the data), in the chat format the Playground and the sample suite ask in. The tiny model
# memorises the rows it trains on, so the sample suite's `learned-*` cases are rows of this
# dataset; apart from counting, it does not learn the tasks for word lists it has never seen.
"""

TINY_LLAMA = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}
"""The demo model's dimensions; the vocabulary is the packaged tokenizer's."""

SPECIAL_TOKENS = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
TOKEN_IDS = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3}
"""Ids of the special tokens in `demo_data/tokenizer.json` (trained first, so they come first)."""


def build_tiny_llama(folder: Path, *, seed: int = DEMO_SEED) -> Path:
    """Save the tiny Llama-architecture demo model, byte for byte the same on every machine.

    Every file is written here rather than by `save_pretrained`, whose output carries the library
    version and changes between releases: the configs are fixed JSON, the tokenizer is the packaged
    one (see `train_tokenizer`), and the weights come from Python's seeded generator, whose stream
    is stable across versions, in a fixed order.
    """
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "config.json", _llama_config())
    _write_json(folder / "generation_config.json", {**TOKEN_IDS, "max_new_tokens": 32})
    _write_json(folder / "tokenizer_config.json", _tokenizer_config())
    shutil.copyfile(_demo_data("tokenizer.json"), folder / "tokenizer.json")
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    save_file(_random_weights(seed), str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "README.md").write_text(MODEL_CARD)
    return folder


def _llama_config() -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **TINY_LLAMA,
        **TOKEN_IDS,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }


def _tokenizer_config() -> dict[str, object]:
    return {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, **SPECIAL_TOKENS}


def _write_json(path: Path, value: dict[str, object]) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _random_weights(seed: int) -> dict[str, Any]:
    """Llama weights: normal(0, 0.02) matrices, RMS norms at 1; the head is tied to the embeddings."""
    import random

    import numpy as np

    rng = random.Random(seed)
    weights = {}
    for name, shape in _llama_shapes():
        if name.endswith("norm.weight"):
            weights[name] = np.ones(shape, dtype=np.float32)
        else:
            count = int(np.prod(shape))
            weights[name] = np.array([rng.gauss(0.0, 0.02) for _ in range(count)], dtype=np.float32).reshape(shape)
    return weights


def _llama_shapes() -> list[tuple[str, tuple[int, ...]]]:
    dims = TINY_LLAMA
    hidden, inner, vocab = dims["hidden_size"], dims["intermediate_size"], dims["vocab_size"]
    kv = hidden // dims["num_attention_heads"] * dims["num_key_value_heads"]
    shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(dims["num_hidden_layers"]):
        layer = f"model.layers.{i}"
        shapes += [
            (f"{layer}.self_attn.q_proj.weight", (hidden, hidden)),
            (f"{layer}.self_attn.k_proj.weight", (kv, hidden)),
            (f"{layer}.self_attn.v_proj.weight", (kv, hidden)),
            (f"{layer}.self_attn.o_proj.weight", (hidden, hidden)),
            (f"{layer}.mlp.gate_proj.weight", (inner, hidden)),
            (f"{layer}.mlp.up_proj.weight", (inner, hidden)),
            (f"{layer}.mlp.down_proj.weight", (hidden, inner)),
            (f"{layer}.input_layernorm.weight", (hidden,)),
            (f"{layer}.post_attention_layernorm.weight", (hidden,)),
        ]
    return [*shapes, ("model.norm.weight", (hidden,))]


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def demo_tokenizer():  # type: ignore[no-untyped-def]
    """The demo model's tokenizer (the packaged `demo_data/tokenizer.json`)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(_demo_data("tokenizer.json")),
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
        **SPECIAL_TOKENS,
    )


def train_tokenizer(*, seed: int = DEMO_SEED, vocab_size: int = 512):  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer trained in a second on the demo corpus.

    This made `demo_data/tokenizer.json` (`train_tokenizer().save_pretrained(DIR)`); the demo model
    ships that file rather than training anew, since trainer output may change between releases.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(seed), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, chat_template=CHAT_TEMPLATE, model_max_length=512, **SPECIAL_TOKENS
    )


def _corpus(seed: int) -> list[str]:
    rows = instruction_rows(seed)
    # the tokenizer (and so the model) learns from the ordinary documents only, not the planted injection
    docs = [p.read_text() for p in _packaged_documents() if p.name != INJECTION_DOCUMENT]
    return [f"{r['instruction']} {r['input']} {r['output']}" for r in rows] + docs


WORDS = (
    "adapter gpu token model prompt deploy rollback registry storage dataset chunk vector "
    "server image release label lineage cache network secret subnet identity budget"
).split()


def instruction_rows(seed: int = DEMO_SEED, count: int = 240) -> list[dict[str, str]]:
    """Small instruction-tuning rows with checkable answers (uppercase, reverse, sort, count)."""
    import random

    rng = random.Random(seed)
    tasks = [
        ("Convert the words to upper case.", lambda ws: " ".join(ws).upper()),
        ("Reverse the order of the words.", lambda ws: " ".join(reversed(ws))),
        ("Sort the words alphabetically.", lambda ws: " ".join(sorted(ws))),
        ("How many words are there?", lambda ws: str(len(ws))),
    ]
    rows = []
    for i in range(count):
        instruction, answer = tasks[i % len(tasks)]
        words = rng.sample(WORDS, rng.randint(2, 5))
        rows.append({"instruction": instruction, "input": " ".join(words), "output": answer(words)})
    return rows


def place_in_cache(cache_dir: Path, repo_id: str, folder: Path, *, ref: str = "main") -> Path:
    """Copy a model folder into the HF cache layout (blobs, snapshots/<commit>, refs/<ref>)."""
    repo_dir = cache_dir / f"models--{repo_id.replace('/', '--')}"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digests = {p.relative_to(folder).as_posix(): _sha256(p) for p in files}
    commit = hashlib.sha1(json.dumps(digests, sort_keys=True).encode()).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    for rel, digest in digests.items():
        blob = repo_dir / "blobs" / digest
        if not blob.exists():
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / rel, blob)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / ref).write_text(commit)
    return snapshot


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _demo_data(name: str) -> Path:
    return Path(str(resources.files("services") / "demo_data" / name))


def _packaged_documents() -> list[Path]:
    folder = _demo_data("documents")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith((".md", ".txt")))


def _write_data(dataset: Path, documents: Path) -> list[str]:
    created = []
    if not dataset.exists():
        dataset.parent.mkdir(parents=True, exist_ok=True)
        lines = (json.dumps(row) for row in instruction_rows())
        dataset.write_text("\n".join(lines) + "\n")
        created.append(str(dataset))
    if not documents.exists():
        documents.mkdir(parents=True)
        for source in _packaged_documents():
            shutil.copyfile(source, documents / source.name)
        created.append(str(documents))
    return created


MODEL_CARD = """---
license: apache-2.0
pipeline_tag: text-generation
library_name: transformers
tags: [llama, demo]
---
# workbench-demo/tiny-llama

A tiny Llama-architecture model made by `workbench demo init`: 2 layers, hidden size 64, random
weights and a byte-level BPE tokenizer trained on the demo corpus. It loads with `from_pretrained` offline
and fine-tunes on a CPU in well under a second per step. Its answers are noise until you
fine-tune it on the demo dataset.
"""
