"""REPOSE_STRICT_TIERS=1 leaves no hole: tests/conftest.py run on a scratch suite by a child pytest.

Each scratch file holds one way a test can go quiet: a module-level skip in the comfy tier (collected before any
test hook runs), a skip inside a browser test, an xfail and an xpass in the comfy tier, a unit-tier skip. Without
strictness they are skips/xfails/xpasses and the run is green; with it each one fails the run.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

SCRATCH = {
    "comfy/test_module_skip.py": "import pytest\npytest.importorskip('no_such_module_for_reposedm_tests')\n\n"
                                 "def test_never_collected():\n    pass\n",
    "comfy/test_marks.py": "import pytest\n\n"
                           "@pytest.mark.xfail(reason='known bug')\ndef test_xfail():\n    assert False\n\n"
                           "@pytest.mark.xfail(reason='fixed bug')\ndef test_xpass():\n    pass\n\n"
                           "def test_ok():\n    pass\n",
    "browser/test_runtime_skip.py": "import pytest\n\ndef test_skip():\n    pytest.skip('no chromium')\n",
    "unit/test_unit_skip.py": "import pytest\n\n@pytest.mark.skipif(True, reason='optional package missing')\n"
                              "def test_skip():\n    pass\n\ndef test_ok():\n    pass\n",
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("strict") / "tests"
    root.mkdir()
    shutil.copy(TESTS / "conftest.py", root / "conftest.py")
    shutil.copytree(TESTS / "harness", root / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in SCRATCH.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(text)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider -rA\nmarkers =\n    comfy\n    browser\n")
    return root


def _run(root: Path, strict: bool, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "REPOSE_STRICT_TIERS"}
    if strict:
        env["REPOSE_STRICT_TIERS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_without_strictness_every_quiet_test_stays_quiet(scratch):
    rc, out = _run(scratch, False, "-q")
    assert rc == 0, out
    assert re.search(r"2 passed, 3 skipped, 1 xfailed, 1 xpassed", out), out


def test_a_module_level_skip_in_the_comfy_tier_fails_the_run(scratch):
    rc, out = _run(scratch, True, "-q", "comfy/test_module_skip.py")
    assert rc != 0, out
    assert "comfy-tier skip is a failure here" in out and "no_such_module_for_reposedm_tests" in out, out


def test_xfail_xpass_and_skips_fail_under_strictness(scratch):
    rc, out = _run(scratch, True, "-q", "comfy/test_marks.py", "browser", "unit")
    assert rc == 1, out
    failed = set(re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M))  # a skipif mark fails in setup: ERROR
    assert failed == {"comfy/test_marks.py::test_xfail", "comfy/test_marks.py::test_xpass",
                      "browser/test_runtime_skip.py::test_skip", "unit/test_unit_skip.py::test_skip"}, out
    assert re.search(r"3 failed, 2 passed.* 1 error", out), out
    assert "comfy-tier xpass" in out and "unit-tier skip not in conftest.UNIT_SKIPS_ALLOWED" in out, out
