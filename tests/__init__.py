"""The project's tests: one package, so every folder imports the shared `tests.support`."""
