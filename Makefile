# The project's interface: install, demo, test, image. Keep these names stable.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint image engine clean

install: $(STAMP)
	@scripts/nginx.sh $(VENV)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/demo.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/pytest

# Starts the Docker engine if needed; builds FROM a local Debian base when no registry answers.
image: install
	@scripts/docker-engine.sh start >/dev/null
	@./build_and_push.sh --no-push --base-image "$$(scripts/base-image.sh)"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
