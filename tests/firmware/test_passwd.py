"""``vanbox passwd``: add, change and delete staff logins in the password file."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.security import check_password_hash

from firmware import passwd as passwd_cmd
from firmware.cli import main
from kiosk.auth import read_passwd

ROOT = Path(__file__).resolve().parents[2]


class FakeStdin(io.StringIO):
    def __init__(self, text: str, tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def run_cli(monkeypatch, argv: list[str], stdin: str = "", tty: bool = False) -> int:
    monkeypatch.setattr(sys, "stdin", FakeStdin(stdin, tty))
    return main(["passwd", *argv])


def test_add_change_delete_keeps_other_lines(tmp_path, monkeypatch, capsys):
    f = tmp_path / "staff.passwd"
    assert run_cli(monkeypatch, ["anna", "--passwd-file", str(f)], "geheim-anna-1\n") == 0
    assert f"added login 'anna' to {f}" in capsys.readouterr().out
    assert run_cli(monkeypatch, ["ben", "--passwd-file", str(f)], "geheim-ben-22\n") == 0
    users = read_passwd(f)
    assert set(users) == {"anna", "ben"}
    assert users["anna"].startswith("scrypt:")
    assert check_password_hash(users["anna"], "geheim-anna-1")
    assert not check_password_hash(users["anna"], "geheim-ben-22")
    assert stat.S_IMODE(f.stat().st_mode) == 0o640

    # A comment the admin wrote stays; changing a password keeps the line's place.
    f.write_text("# staff of the van\n" + f.read_text())
    assert run_cli(monkeypatch, ["anna", "--passwd-file", str(f)], "neues-passwort\n") == 0
    assert "changed the password of 'anna'" in capsys.readouterr().out
    lines = f.read_text().splitlines()
    assert lines[0] == "# staff of the van"
    assert [ln.split(":")[0] for ln in lines[1:]] == ["anna", "ben"]
    users = read_passwd(f)
    assert check_password_hash(users["anna"], "neues-passwort")
    assert not check_password_hash(users["anna"], "geheim-anna-1")

    assert run_cli(monkeypatch, ["anna", "--passwd-file", str(f), "--delete"]) == 0
    assert "deleted login 'anna'" in capsys.readouterr().out
    assert set(read_passwd(f)) == {"ben"}
    assert f.read_text().startswith("# staff of the van\n")


def test_delete_unknown_and_bad_input_are_clear_errors(tmp_path, monkeypatch, capsys):
    f = tmp_path / "staff.passwd"
    assert run_cli(monkeypatch, ["ben", "--passwd-file", str(f)], "geheim-ben-22\n") == 0
    before = f.read_text()
    capsys.readouterr()

    assert run_cli(monkeypatch, ["carla", "--passwd-file", str(f), "--delete"]) == 2
    assert "there is no login 'carla'" in capsys.readouterr().err

    assert run_cli(monkeypatch, ["carla", "--passwd-file", str(f)], "kurz\n") == 2
    assert "too short" in capsys.readouterr().err

    assert run_cli(monkeypatch, ["carla", "--passwd-file", str(f)], "") == 2
    assert "no password on standard input" in capsys.readouterr().err

    assert run_cli(monkeypatch, ["bad:name", "--passwd-file", str(f)], "lang-genug-1\n") == 2
    assert "login name 'bad:name' is not allowed" in capsys.readouterr().err
    assert f.read_text() == before


def test_terminal_asks_twice_and_refuses_a_mismatch(tmp_path, monkeypatch, capsys):
    f = tmp_path / "staff.passwd"
    answers = iter(["erstes-passwort", "anderes-passwort"])
    prompts = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(passwd_cmd.getpass, "getpass", fake_getpass)
    assert run_cli(monkeypatch, ["anna", "--passwd-file", str(f)], tty=True) == 2
    assert "the two passwords differ" in capsys.readouterr().err
    assert not f.exists()
    assert prompts == ["New password for anna: ", "Repeat the password: "]

    answers = iter(["gleiches-passwort", "gleiches-passwort"])
    assert run_cli(monkeypatch, ["anna", "--passwd-file", str(f)], tty=True) == 0
    assert check_password_hash(read_passwd(f)["anna"], "gleiches-passwort")


def test_config_names_the_file_and_a_broken_file_is_not_rewritten(tmp_path, monkeypatch, capsys):
    f = tmp_path / "from-config.passwd"
    cfg = tmp_path / "vanbox.toml"
    cfg.write_text(f'[staff]\npasswd_file = "{f}"\n')
    assert run_cli(monkeypatch, ["anna", "--config", str(cfg)], "geheim-anna-1\n") == 0
    assert set(read_passwd(f)) == {"anna"}

    f.write_text(f.read_text() + "this line is garbage\n")
    before = f.read_text()
    assert run_cli(monkeypatch, ["ben", "--config", str(cfg)], "geheim-ben-22\n") == 2
    assert f"{f}, line 2: expected NAME:HASH" in capsys.readouterr().err
    assert f.read_text() == before

    cfg.write_text("[staff]\npasswd_fiel = 'x'\n")
    assert run_cli(monkeypatch, ["ben", "--config", str(cfg)], "geheim-ben-22\n") == 2
    assert "did you mean staff.passwd_file" in capsys.readouterr().err


def test_real_pipe_into_the_command(tmp_path):
    """Through a real pipe, as a provisioning script would do it."""
    f = tmp_path / "staff.passwd"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "passwd", "dora", "--passwd-file", str(f)],
        input="pipe-passwort-9\n", capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert check_password_hash(read_passwd(f)["dora"], "pipe-passwort-9")


@pytest.mark.parametrize("password", [" leading-space", "trailing-space ", "x" * 1025])
def test_password_rules(tmp_path, monkeypatch, capsys, password):
    f = tmp_path / "staff.passwd"
    assert run_cli(monkeypatch, ["anna", "--passwd-file", str(f)], password + "\n") == 2
    assert "the password" in capsys.readouterr().err
    assert not f.exists()
