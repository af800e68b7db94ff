"""Stand-ins for machine tools the tests cannot have (an NVIDIA driver's `nvidia-smi`)."""
