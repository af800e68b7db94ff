"""Benchmarks: each runs the peer named in its issue in the same run and prints the ratio."""
