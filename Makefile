# lottery-mia: the two commands of the README, and the environment they need.
#   make report   run the main job on the embedded default data and write results/report.html
#   make test     run the test suite (what CI runs)
# Both create the virtual environment .venv first if it is missing or out of date.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: report test dry-run install clean

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	bash .ci/install-slurm.sh
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
