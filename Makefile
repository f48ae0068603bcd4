# Two entry points for a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is installed before the package, so the build chosen here is the one radcnn gets. From plain PyPI, Linux
# torch wheels are CUDA builds (multi-GB); the development machines' pip wheel house provides the CPU build. Choose
# explicitly with PyTorch's index: TORCH_INDEX=https://download.pytorch.org/whl/cpu (or .../whl/cu126, ...);
# docs/gpu.md explains.
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format install clean bench system-packages

# Programs the tests drive for real (a PACS, a browser, OCR), from Debian packages: file=package pairs (the
# English OCR data is a data file, hence `test -e`).
SYSTEM_BINARIES := /usr/sbin/Orthanc=orthanc /usr/bin/chromium=chromium /usr/bin/tesseract=tesseract-ocr \
	/usr/share/tesseract-ocr/5/tessdata/eng.traineddata=tesseract-ocr-eng
APT_GET ?= apt-get

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url "$(TORCH_INDEX)") "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/radcnn demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# Installs the Debian packages whose binaries are missing (CI runs as root on Debian); a no-op when all are there.
system-packages:
	@missing=""; for pair in $(SYSTEM_BINARIES); do \
		test -e "$${pair%%=*}" || missing="$$missing $${pair#*=}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y $$missing; \
	fi

# Two workers: much of the slow tests' time is spent waiting (Flower heartbeats, servers, subprocess start-up).
test: lint system-packages
	$(BIN)/python -m pytest -q -n 2

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
