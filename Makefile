# coco.tdisp: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV   := .venv
PY     := $(VENV)/bin/python
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help system-deps env test sanity units pytest integration lint compat package docs ee-context sim-sdist demo bench clean

help:
	@echo "make demo   - create the environment, start a simulated fleet, run the main job, print a summary"
	@echo "make test   - every check: sanity, units, pytest, integration, lint, compat, package, docs"
	@echo "make env    - (re)create .venv and build/collections only"
	@echo "make bench  - run the benchmarks in bench/ and print their ratios"
	@echo "make package    - build the collection tarball, check it with galaxy-importer, install it and run it from a user project"
	@echo "make docs       - lint the collection docs and build the docsite (build/docs/site/build/html)"
	@echo "make sim-sdist  - the simulator as a Python sdist (build/dist; or: pip install ./simulator)"
	@echo "make kernel-test - the real-kernel lane: Debian's 7.3 kernel under QEMU, the collection on real sysfs (docs/kernel-lane.md)"
	@echo "make ee-context - the execution environment's build context (build/ee/context; building it needs podman or docker)"

system-deps:
	@./tools/install-system-deps.sh

env:
	@./tools/env.sh

test: system-deps env sanity units pytest integration lint compat package docs
	@echo "make test: all checks passed"

sanity: env
	./tools/ansible-test.sh sanity --requirements --color no

units: env
	./tools/ansible-test.sh units --venv --requirements --color no

pytest: env
	PYTHONPATH=build/collections $(PY) -m pytest -q -p no:cacheprovider simulator/tdisp_sim/tests tests/simulator tests/abi tests/browser

integration: env
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

lint: env
	ansible-lint --profile production --offline
	$(VENV)/bin/antsibull-changelog lint

demo: system-deps env
	@./tools/demo.sh

bench: env
	@for b in bench/*/run; do echo "== $$b"; $$b || exit 1; done

clean:
	rm -rf build tests/output

compat: env
	./tools/compat.sh

package: env
	PYTHONPATH=build/collections $(PY) -m pytest -q -p no:cacheprovider tests/packaging

docs: env
	./tools/docs.sh

sim-sdist: env
	$(PY) -m build --sdist --outdir build/dist simulator

ee-context: env
	./tools/package.sh >/dev/null
	$(VENV)/bin/ansible-builder create -f execution-environment.yml -c build/ee/context --output-filename Containerfile

# The real-kernel lane (docs/kernel-lane.md): Debian's 7.3 kernel under QEMU TCG, cached in build/kernel.
.PHONY: kernel-test
kernel-test: env
	./tools/kernel-lane.sh
