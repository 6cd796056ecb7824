"""`lineside-deploy show`: a verified summary of a bundle, or a one-line refusal."""

from __future__ import annotations

import json

from lineside.deploy import bundle as bundles
from lineside.deploy.cli import main
from tests.deploy.test_bundle import MANIFEST, MODEL


def test_show_prints_summary_and_checks(tmp_path, capsys):
    path = tmp_path / "m-1.lsb"
    path.write_bytes(bundles.pack(MANIFEST, {"model.tflite": MODEL}))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "review_at 0, fail_at 0.1" in out and "SHA-256 of every file: ok" in out
    assert main(["show", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["name"] == "m"


def test_show_refuses_a_broken_bundle(tmp_path, capsys):
    path = tmp_path / "broken.lsb"
    path.write_bytes(b"nope")
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a zip" in err and len(err.strip().splitlines()) == 1
