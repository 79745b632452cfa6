"""scripts/gen_model.py --check: the checked-in model is what the pinned
botocore generates (scripts/test runs it before building)."""
import shutil
import subprocess
import sys

from conftest import ROOT

MODEL = ROOT / "crates" / "riffle-streams" / "src" / "model.rs"


def check(path):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_model.py"), "--check", "kinesis", "2013-12-02", str(path)],
                          capture_output=True, text=True)


def test_checked_in_model_has_no_drift():
    out = check(MODEL)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_drift_fails_and_writes_nothing(tmp_path):
    drifted = tmp_path / "model.rs"
    shutil.copy(MODEL, drifted)
    text = drifted.read_text().replace("required: true", "required: false", 1)
    drifted.write_text(text)
    out = check(drifted)
    assert out.returncode == 1
    assert out.stderr.endswith(f"{drifted} differs from what scripts/gen_model.py generates from botocore 1.44.8; regenerate it\n")
    assert "-" in out.stderr and "+" in out.stderr
    assert drifted.read_text() == text
