"""Test tiers: unit (core, fast), comfy (inside a real ComfyUI server), browser (its web page in Chromium).

One ComfyUI server is started per test session, on first use, with this pack in custom_nodes/.
With REPOSE_STRICT_TIERS=1 (set by `make test` and CI) a skipped comfy/browser test is a failure, so a
broken harness can never hide behind a green run.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.comfy_server import ComfyServer, comfy_available

STRICT = os.environ.get("REPOSE_STRICT_TIERS") == "1"
TIERS = ("comfy", "browser")


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and any(item.get_closest_marker(t) for t in TIERS):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"REPOSE_STRICT_TIERS=1: a {item.nodeid} skip is a failure here: {reason}"


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """A running ComfyUI 0.3.75 with the pack installed (shared by the comfy and browser tiers)."""
    reason = comfy_available()
    if reason:
        pytest.skip(reason)
    server = ComfyServer(home=tmp_path_factory.mktemp("comfy-home"))
    server.start()
    yield server
    server.stop()
