# make demo : install what is missing, then deploy a small platform on this machine and clean up
# make test : install what is missing, type-check model/plan/wire (mypy --strict), then run the
#             whole test suite: on this kernel, then the tests that need sch_netem or cgroup v2 inside
#             a guest kernel (user-mode Linux, else QEMU; where none runs, those are skipped with
#             each kernel's reason)
VENV   := .venv
PYTHON := $(VENV)/bin/python
PYTEST := $(PYTHON) -m pytest

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install-system-packages
	./scripts/install-system-packages
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[test]'
	$(PYTHON) -m distem.testing.guest setup
	touch $@

demo: setup
	$(VENV)/bin/distem demo

test: setup
	$(PYTHON) -m mypy
	$(PYTEST) -m "not slow"
	$(PYTHON) -m distem.testing.guest run --or-skip -- $(PYTEST) -p no:cacheprovider -m "guest and not slow" tests

bench: setup
	for b in benchmarks/*.py; do $(PYTHON) $$b || exit 1; done

clean: setup
	$(VENV)/bin/distem clean
