# featlab — the two commands of the README:  make lab   and   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.featlab-installed

.PHONY: lab test install handouts notebooks benchmark constraints clean

# Create .venv if missing and install featlab with the pinned versions of constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[lab,test]"
	@touch $@

install: $(STAMP)

lab: install                   ## open the course in JupyterLab
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

test: install                  ## unit tests + every notebook and exercise solution (nbval)
	MPLBACKEND=agg $(BIN)/python -m pytest

handouts: install              ## execute every notebook and write HTML to build/handouts/
	@mkdir -p build/handouts
	$(BIN)/jupyter nbconvert --to html --execute --output-dir build/handouts \
	    --ExecutePreprocessor.timeout=300 notebooks/*.ipynb

notebooks: install             ## re-execute notebooks in place (refresh the committed outputs)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=300 notebooks/*.ipynb exercises/solutions/*.ipynb

benchmark: install
	$(BIN)/python benchmarks/extract_speed.py

constraints:                   ## re-pin after an upgrade
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^featlab' > constraints.txt.new
	@echo "review constraints.txt.new, then move it over constraints.txt"

clean:
	rm -rf build .pytest_cache
