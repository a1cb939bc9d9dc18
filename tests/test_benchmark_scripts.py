"""The timing scripts in ``benchmarks/`` still run against today's model (they time, these tests do not)."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_speed_script_times_both_stages_of_the_default_networks():
    command = [sys.executable, str(BENCHMARKS / "speed.py"), "--n-cells", "300", "--epochs", "1", "--repeats", "1"]
    done = subprocess.run([*command, "--skip-totalvi", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # 300 cells: preset="auto" gives 2-layer networks with dropout 0.2, at the script's fixed lambda
    assert "networks: 2 layers, dropout 0.2, lambda 10" in done.stdout
    rows = dict(re.findall(r"^\| (stage 1 \(shared\)|stage 2 \(specific\)|both stages) \| (.*) \|$", done.stdout, re.M))
    assert set(rows) == {"stage 1 (shared)", "stage 2 (specific)", "both stages"}
    model_s, floor_s, ratio = (float(v) for v in rows["both stages"].split(" | "))
    assert model_s > 0 and floor_s > 0 and ratio > 0  # (a), (b) and a / b: the epochs of both were timed
