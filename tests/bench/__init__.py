"""Tests that run the benchmark scripts on their quick sizes."""
