PYTHON ?= python
PIP ?= $(PYTHON) -m pip
# The exact versions CI tests (constraints.txt); `make install CONSTRAINTS=` installs unpinned.
CONSTRAINTS ?= -c constraints.txt

.PHONY: install install-test demo test test-slow lint mutants

install:
	$(PIP) install -e ".[cpu]" $(CONSTRAINTS)

install-test:
	$(PIP) install -e ".[cpu,test]" $(CONSTRAINTS)

# Train Mask R-CNN from scratch on synthetic shapes (CPU), evaluate it and write detection PNGs.
demo: install
	$(PYTHON) samples/shapes.py train --logs logs/demo --weights none
	$(PYTHON) samples/shapes.py evaluate --logs logs/demo --weights last --out logs/demo/metrics.json
	$(PYTHON) samples/shapes.py generate --out logs/demo/images --count 8
	$(PYTHON) samples/shapes.py detect --logs logs/demo --weights last --image logs/demo/images --out logs/demo/detections

# Two pytest workers (pytest-xdist), each taking whole test files (module fixtures are built
# once): one process leaves CI's second core idle most of the time. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2

test: install-test
	$(PYTHON) -m pytest -m "not slow" -q -n $(PYTEST_WORKERS) --dist loadfile

test-slow: install-test
	$(PYTHON) -m pytest -m slow -q

lint:
	$(PYTHON) -m ruff check mrcnn unet localization vision_common samples tests benchmarks

# Apply each curated mutant (tests/mutation/*.toml) to a temporary copy and run the tests that
# must kill it; reports killed / survived. Not part of CI (tens of minutes).
mutants: install-test
	$(PYTHON) tests/mutation/run_mutants.py --out logs/mutants.json
