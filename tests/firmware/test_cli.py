"""The ``vanbox`` command imports only the module of the subcommand it runs, so a
package one command needs cannot stop another (the box must start without the hub's)."""

from __future__ import annotations

import sys

import pytest

from firmware import cli


@pytest.fixture
def hub_modules_missing(monkeypatch):
    """As if the hub's modules could not be imported (``None`` in sys.modules makes
    ``import`` raise ImportError)."""
    for name in ("hub.server", "hub.fleet_sim"):
        monkeypatch.setitem(sys.modules, name, None)


def test_a_box_command_runs_without_the_hubs_modules(hub_modules_missing, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["prune", "--help"])
    assert e.value.code == 0
    assert "--dry-run" in capsys.readouterr().out
    args = cli.build_parser(["-v", "prune", "--dry-run"]).parse_args(["-v", "prune", "--dry-run"])
    assert args.command == "prune" and args.dry_run and args.verbose


def test_every_subcommand_still_has_its_arguments(monkeypatch):
    parser = cli.build_parser()
    for name in cli.COMMANDS:
        assert parser.parse_args([name, *NEEDS.get(name, [])]).command == name
    # and the test above is not vacuous: without an argv every module is imported
    monkeypatch.setitem(sys.modules, "hub.server", None)
    with pytest.raises(ImportError):
        cli.build_parser()


NEEDS = {"nmea": ["x.nmea"], "passwd": ["anna"]}


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
