"""The edge install has no TensorFlow: the daemon must inspect without ever importing it."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, io, contextlib
from lineside.daemon import cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = cli.main(["inspect", sys.argv[1], sys.argv[2]])
assert status == 0, (status, out.getvalue())
assert '"verdict"' in out.getvalue()
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print("LEAKED" if leaked else "CLEAN", leaked)
"""


def test_inspecting_leaves_tensorflow_unimported(bundle_path, synth_dir):
    image = synth_dir / "test" / "good" / "000.png"
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(bundle_path), str(image)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "CLEAN []"
