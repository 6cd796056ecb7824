"""`lineside-deploy` keygen, sign, verify and show; one-line refusals."""

from __future__ import annotations

import json
import stat

from lineside.deploy import bundle as bundles
from lineside.deploy.cli import main
from tests.deploy.test_bundle import MANIFEST, MODEL


def _bundle(tmp_path):
    path = tmp_path / "m-1.lsb"
    path.write_bytes(bundles.pack(MANIFEST, {"model.tflite": MODEL}))
    return path


def test_show_prints_summary(tmp_path, capsys):
    path = _bundle(tmp_path)
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "review_at 0, fail_at 0.1" in out and "self-test         none" in out
    assert main(["show", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["name"] == "m"


def test_keygen_sign_verify(tmp_path, capsys):
    keys = tmp_path / "keys"
    assert main(["keygen", "--out", str(keys), "--name", "qa"]) == 0
    assert stat.S_IMODE((keys / "qa.key").stat().st_mode) == 0o600
    assert main(["keygen", "--out", str(keys), "--name", "qa"]) == 2  # never overwrite a key
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "qa.pub").write_bytes((keys / "qa.pub").read_bytes())
    path = _bundle(tmp_path)
    capsys.readouterr()
    assert main(["verify", str(path), "--trusted", str(trusted)]) == 2
    assert "not signed" in capsys.readouterr().err
    assert main(["sign", str(path), "--key", str(keys / "qa.key")]) == 0
    assert main(["verify", str(path), "--trusted", str(trusted)]) == 0
    out = capsys.readouterr().out
    for check in (
        "size",
        "zip:",
        "signature: valid, by trusted key",
        "SHA-256 of 1 files",
        "manifest schema version 1",
    ):
        assert check in out
    # Another key is not trusted.
    assert main(["keygen", "--out", str(keys), "--name", "other"]) == 0
    assert main(["sign", str(path), "--key", str(keys / "other.key")]) == 0
    capsys.readouterr()
    assert main(["verify", str(path), "--trusted", str(trusted)]) == 2
    assert "untrusted key" in capsys.readouterr().err


def test_refusals_are_one_line(tmp_path, capsys):
    path = tmp_path / "broken.lsb"
    path.write_bytes(b"nope")
    for argv in (
        ["show", str(path)],
        ["verify", str(path)],
        ["sign", str(path), "--key", str(tmp_path / "none.key")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("lineside-deploy: error: ") and len(err.strip().splitlines()) == 1
