"""Tests of the real image under a real Docker engine."""
