# lottery-mia: the two commands of the README, and the environment they need.
#   make report   run the main job on the embedded default data and write results/report.html
#   make test     run the test suite (installs nothing system-wide; without SLURM its tests
#                 are skipped with the reason)
#   make test-slurm   install a single-node SLURM (system packages, as root) then run the suite;
#                 the same as `LOTTERY_MIA_INSTALL_SLURM=1 make test`
# Both create the virtual environment .venv first if it is missing or out of date.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: report test test-slurm install-slurm dry-run install clean

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
ifeq ($(LOTTERY_MIA_INSTALL_SLURM),1)
	bash .ci/install-slurm.sh
endif
	$(BIN)/python -m pytest

# Opt-in: installs SLURM and munge system-wide (apt-get, as root).
install-slurm:
	bash .ci/install-slurm.sh

test-slurm: $(STAMP) install-slurm
	$(BIN)/python -m pytest

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
