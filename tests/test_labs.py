"""Every lab runs top to bottom as a script in its fast mode."""

import os
import pathlib
import subprocess
import sys

import pytest

LABS = sorted((pathlib.Path(__file__).parent.parent / "labs").glob("[0-9]*.py"))


@pytest.mark.parametrize("lab", LABS, ids=[lab.stem for lab in LABS])
def test_lab_runs_in_fast_mode(lab, tmp_path):
    env = {
        **os.environ,
        "TFDGM_FAST": "1",
        "TFDGM_LAB_OUT": str(tmp_path),
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    proc = subprocess.run(
        [sys.executable, str(lab)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert list(tmp_path.glob("*.png")), "the lab drew no picture"


def test_labs_are_jupytext_percent_scripts():
    assert LABS, "no labs found"
    for lab in LABS:
        text = lab.read_text()
        assert "format_name: percent" in text and "# %% [markdown]" in text, lab
        assert "Reference solution" in text, f"{lab.name} has no reference solutions"
