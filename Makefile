# featlab — the two commands of the README:  make lab   and   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.featlab-installed

.PHONY: lab lab-zh test install chromium handouts sync notebooks exercises benchmark constraints clean

# Create .venv if missing and install featlab with the pinned versions of constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# uv installs the same pinned versions as pip does, unpacking in parallel (PyTorch and its CUDA
	@# libraries are 7 GB: 55 s instead of 96 s on 2 cores); pip does it when uv cannot (no uv
	@# wheel for this platform, an index only pip.conf knows about ...)
	$(BIN)/python -m pip install -q -c constraints.txt uv \
	    && $(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode \
	       -c constraints.txt -e ".[lab,test]" \
	    || $(BIN)/python -m pip install -q -c constraints.txt -e ".[lab,test]"
	@# nbgrader is only a library here (make exercises): keep its grading UI out of JupyterLab
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1
	$(BIN)/jupyter server extension disable --sys-prefix $(addprefix nbgrader.server_extensions., \
	    formgrader validate_assignment assignment_list course_list) >/dev/null 2>&1
	@touch $@

install: $(STAMP)

lab: install                   ## open the course in JupyterLab
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# The same in Chinese: JupyterLab's interface in Simplified Chinese (its language pack,
# jupyterlab-language-pack-zh-CN) with settings of its own in build/lab-zh (yours stay as they are),
# opened at the top so that exercises/zh/ and notebooks/ are both at hand.
LAB_ZH := $(CURDIR)/build/lab-zh/@jupyterlab/translation-extension
lab-zh: install                ## 中文: open the course in JupyterLab with a Chinese interface
	@mkdir -p $(LAB_ZH) && echo '{"locale": "zh_CN"}' > $(LAB_ZH)/plugin.jupyterlab-settings
	@$(BIN)/python -c "import importlib.metadata as m; m.version('jupyterlab-language-pack-zh-CN')" \
	    2>/dev/null || echo "jupyterlab-language-pack-zh-CN is not installed: menus stay English" \
	    "($(BIN)/pip install jupyterlab-language-pack-zh-CN)"
	JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/build/lab-zh \
	    $(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) .

# Debian's Chromium and CJK fonts: tests/test_browser.py (JupyterLab in a browser) and PDF handouts.
# Needs root and apt; elsewhere the browser test is skipped and says how to install it.
chromium:
	@if dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; echo "apt-get install chromium fonts-noto-cjk"; \
	    apt-get install -y -q chromium fonts-noto-cjk >/dev/null 2>&1 \
	    || { apt-get update -q && apt-get install -y -q chromium fonts-noto-cjk; } \
	    || echo "warning: apt-get could not install chromium; tests/test_browser.py and PDF handouts will be skipped"; \
	else echo "chromium is not installed (needs root and apt): sudo apt-get install chromium fonts-noto-cjk;" \
	    "tests/test_browser.py and PDF handouts are skipped until then (HTML handouts are still made)"; fi

test: install chromium         ## unit tests, notebooks in JupyterLab + Chromium, nbval on notebooks and solutions
	MPLBACKEND=agg $(BIN)/python -m pytest

handouts: install chromium     ## HTML (+ PDF) of notebooks, exercises, cheat sheet, glossary in build/handouts/, English and 中文
	$(BIN)/python tools/handouts.py --out build/handouts

sync: install                  ## text sources -> notebooks (outputs kept), exercises, Chinese edition; no execution
	for f in notebooks/src/*.py; do b=$${f##*/}; \
	    $(BIN)/jupytext -q --update --to ipynb -o notebooks/$${b%.py}.ipynb $$f || exit 1; done
	$(BIN)/python tools/build_exercises.py
	@# the Chinese edition: catalogues follow the English (changed cells turn fuzzy), then the
	@# complete ones are built into notebooks/zh/ and exercises/zh/ with the English outputs
	$(BIN)/python tools/translate.py update
	$(BIN)/python tools/translate.py build
	$(BIN)/python tools/messages.py update
	$(BIN)/python tools/messages.py compile

notebooks: sync                ## sync, then re-execute notebooks and solutions in place (refresh outputs)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=300 notebooks/*.ipynb exercises/solutions/*.ipynb
	$(BIN)/python tools/translate.py build

exercises: install             ## exercises/src/*.py -> exercises/ and solutions/; run the changed solutions
	stale="$$($(BIN)/python tools/build_exercises.py)" && if [ -n "$$stale" ]; then \
	    $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=300 $$stale; fi
	$(BIN)/python tools/translate.py update exercises
	$(BIN)/python tools/translate.py build

benchmark: install
	$(BIN)/python benchmarks/extract_speed.py

constraints:                   ## re-pin after an upgrade
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^featlab' > constraints.txt.new
	@echo "review constraints.txt.new, then move it over constraints.txt"

clean:
	rm -rf build .pytest_cache
