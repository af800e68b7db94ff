"""Fine-tuning: job specs, preflight plans, detached training processes and their job folders."""
