# coco.tdisp: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV   := .venv
PY     := $(VENV)/bin/python
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help env test sanity units pytest integration lint compat demo bench clean

help:
	@echo "make demo   - create the environment, start a simulated fleet, run the main job, print a summary"
	@echo "make test   - every check: sanity, units, pytest, integration, lint"
	@echo "make env    - (re)create .venv and build/collections only"
	@echo "make bench  - run the benchmarks in bench/ and print their ratios"

env:
	@./tools/env.sh

test: env sanity units pytest integration lint compat
	@echo "make test: all checks passed"

sanity: env
	./tools/ansible-test.sh sanity --requirements --color no

units: env
	./tools/ansible-test.sh units --venv --requirements --color no

pytest: env
	PYTHONPATH=build/collections $(PY) -m pytest -q -p no:cacheprovider tests/simulator tests/abi

integration: env
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

lint: env
	ansible-lint --profile production --offline roles playbooks
	$(VENV)/bin/antsibull-changelog lint

demo: env
	@./tools/demo.sh

bench: env
	@for b in bench/*/run; do echo "== $$b"; $$b || exit 1; done

clean:
	rm -rf build tests/output

compat: env
	./tools/compat.sh

# The real-kernel lane (docs/kernel-lane.md): Debian's 7.3 kernel under QEMU TCG, cached in build/kernel.
.PHONY: kernel-test
kernel-test: env
	./tools/kernel-lane.sh
