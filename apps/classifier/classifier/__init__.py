"""A text classifier service over a fine-tuned sequence-classification model (base plus PEFT adapter)."""
