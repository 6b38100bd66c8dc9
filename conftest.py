"""Shared fixtures, plus a per-notebook time table at the end of the run."""
from __future__ import annotations

import os
from collections import defaultdict

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "agg")
# the suite checks the English messages of featlab.checks wherever it is run from (a Chinese folder,
# a terminal of a Jupyter kernel); tests/test_check_messages.py switches to Chinese where it means to
os.environ["FEATLAB_LANG"] = "en"

_NB_TIMES: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NB_TIMES[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _NB_TIMES:
        return
    tr = terminalreporter
    tr.section("notebook execution times (budget: 60 s each on 2 CPU cores)")
    for path, secs in sorted(_NB_TIMES.items()):
        flag = "" if secs < 60 else "   <-- over budget"
        tr.write_line(f"{secs:7.1f} s  {path}{flag}")


@pytest.fixture(scope="session")
def lite0():
    import featlab as fl
    return fl.load_model("efficientnet_lite0", device="cpu")


@pytest.fixture
def seeded():
    torch.manual_seed(0)
