# Two commands (see README): `make demo` and `make test`. Both build .venv themselves (CPU torch, pinned).
PY := .venv/bin/python
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1

.PHONY: demo test setup-core setup-test clean

setup-core:
	@scripts/setup_env.sh core

setup-test:
	@scripts/setup_env.sh test

demo: setup-core
	$(PY) -m reposedm_core.demo --out outputs/demo.png

test: setup-test
	REPOSE_STRICT_TIERS=1 $(PY) -m pytest tests

clean:
	rm -rf .venv .comfy outputs
