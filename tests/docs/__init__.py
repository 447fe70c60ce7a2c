"""Tests of the README and docs/ pages: their links, tables and the commands they show."""
