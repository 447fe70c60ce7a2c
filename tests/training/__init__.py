"""Tests of container.training, mirroring its modules."""
