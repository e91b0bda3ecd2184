"""Fixtures of the workflow tests."""

import os

import pytest

from tests.support.runs import STANDINS


@pytest.fixture
def standins(monkeypatch, tmp_path):
    """The stand-in agent CLIs come first on PATH for the in-process worker's agents;
    returns monkeypatch, to set their STANDIN_* variables."""
    monkeypatch.setenv("PATH", f"{STANDINS}:{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_WRITE", "{task}.out")
    monkeypatch.setenv("STANDIN_ONCE_DIR", str(tmp_path / "once"))
    return monkeypatch
