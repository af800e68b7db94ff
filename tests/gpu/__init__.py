"""Checks that need a CUDA GPU (and vLLM); they skip on any other machine."""
