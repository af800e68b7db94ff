"""The Fine-tune mode: the jobs screen, the job detail, and the new-job form with its fields and plan text."""
