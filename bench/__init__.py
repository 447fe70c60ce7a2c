"""Benchmarks: serving and training measured against the in-process limit."""
