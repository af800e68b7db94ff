"""The peer: a plain transformers Trainer + PEFT script, as a team member would write it.

Usage: python -m bench.plain_trainer MODEL_DIR DATA.jsonl MAX_STEPS BATCH SEQ  (prints tokens/s)
"""

import json
import sys

from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

model_dir, data, steps, batch, seq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
tok = AutoTokenizer.from_pretrained(model_dir)
prompt = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"


def encode(row: dict) -> dict:
    p = tok(prompt.format(**row))["input_ids"]
    c = tok(row["output"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = (p + c)[:seq]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ([-100] * len(p) + c)[:seq]}


with open(data) as fh:
    rows = [json.loads(line) for line in fh]
train = Dataset.from_list([encode(r) for r in rows])
model = get_peft_model(
    AutoModelForCausalLM.from_pretrained(model_dir),
    LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"),
)
args = TrainingArguments(
    "/tmp/plain-trainer-out",
    max_steps=steps,
    per_device_train_batch_size=batch,
    learning_rate=2e-4,
    logging_steps=1,
    report_to="none",
    save_strategy="no",
    use_cpu=True,
    disable_tqdm=True,
    include_num_input_tokens_seen="non_padding",
    seed=42,
)
trainer = Trainer(
    model=model,
    args=args,
    train_dataset=train,
    data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100),
)
out = trainer.train()
print(json.dumps({"tokens_per_s": trainer.state.num_input_tokens_seen / out.metrics["train_runtime"]}))
