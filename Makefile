# lottery-mia: the two commands of the README, and the environment they need.
#   make report     run the main job on the embedded default data and write results/report.html
#   make test       run the test suite (installs nothing system-wide; without SLURM or
#                   Chromium their tests are skipped with the reason)
#   make test-full  what CI runs (.ci/run): install a single-node SLURM and headless Chromium
#                   (Debian packages, as root), then run the suite with
#                   LOTTERY_MIA_REQUIRE_SYSTEM=1, so a SLURM or browser test that cannot run
#                   fails instead of being skipped
# Both create the virtual environment .venv first if it is missing or out of date.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: report test test-full install-slurm install-browser dry-run install clean

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

# Opt-in: installs SLURM and munge, and Chromium, system-wide (apt-get, as root).
install-slurm:
	bash .ci/install-slurm.sh

install-browser:
	bash .ci/install-browser.sh

test-full: $(STAMP) install-slurm install-browser
	LOTTERY_MIA_REQUIRE_SYSTEM=1 $(BIN)/python -m pytest

dry-run: $(STAMP)
	$(BIN)/snakemake -n --cores $(CORES)

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade -c constraints.txt pip setuptools wheel
	$(BIN)/python -m pip install -c constraints.txt -e ".[test,slurm]"
	touch $(STAMP)

clean:
	rm -rf results logs .snakemake
