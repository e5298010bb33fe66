"""Every lab runs top to bottom as a script in its fast mode."""

import pathlib
import runpy
import sys

import matplotlib.pyplot as plt
import pytest

LABS = sorted((pathlib.Path(__file__).parent.parent / "labs").glob("[0-9]*.py"))


@pytest.mark.parametrize("lab", LABS, ids=[lab.stem for lab in LABS])
def test_lab_runs_in_fast_mode(lab, tmp_path, monkeypatch):
    """The lab runs top to bottom as ``python labs/NN_name.py`` would run it, in this
    process (TensorFlow is imported once per test worker, not once per lab: ~8 s of CPU
    each), from an empty working directory, and draws its pictures."""
    monkeypatch.setenv("TFDGM_FAST", "1")
    monkeypatch.setenv("TFDGM_LAB_OUT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(lab)])
    try:
        runpy.run_path(str(lab), run_name="__main__")
    finally:
        plt.close("all")
    assert list(tmp_path.glob("*.png")), "the lab drew no picture"


def test_labs_are_jupytext_percent_scripts():
    assert LABS, "no labs found"
    for lab in LABS:
        text = lab.read_text()
        assert "format_name: percent" in text and "# %% [markdown]" in text, lab
        assert "Reference solution" in text, f"{lab.name} has no reference solutions"
