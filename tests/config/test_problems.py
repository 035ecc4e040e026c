"""config.problems through Settings.load: every wrong key in a file and every unknown ``CXR_*`` variable is reported at
once, one line each, with the file or variable, the dotted key and a "did you mean"; values are never repeated."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.problems import ConfigurationError
from config.settings import Settings
from tests.helpers.cli import run_cli


def test_two_wrong_keys_in_a_file_are_both_reported(tmp_path: Path) -> None:
    path = tmp_path / "cxr.toml"
    path.write_text('detektor = "baseline"\n[scp]\nprot = 4242\n[[destinations]]\nname = "p"\nae_title = "P"\n'
                    'host = "h"\nport = 70000\n')  # fmt: skip
    with pytest.raises(ConfigurationError) as error:
        Settings.load(path)
    assert sorted(error.value.problems) == sorted([
        f"{path}: detektor: unknown key (did you mean detector?)",
        f"{path}: scp.prot: unknown key (did you mean port?)",
        f"{path}: destinations[0].port: input should be less than or equal to 65535",
    ])  # fmt: skip
    assert "70000" not in str(error.value), "values are not repeated (a configuration holds passwords)"


def test_unknown_environment_variables_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXR_SCP__PROT", "1")
    monkeypatch.setenv("CXR_DETEKTOR", "baseline")
    monkeypatch.setenv("CXR_SCP__PORT", "11113")  # a real key: fine
    with pytest.raises(ConfigurationError) as error:
        Settings.load(None)
    assert error.value.problems == [
        "environment CXR_DETEKTOR: detektor: unknown key (did you mean detector?)",
        "environment CXR_SCP__PROT: scp.prot: unknown key (did you mean port?)",
    ]


def test_the_command_prints_each_problem_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "cxr.toml"
    path.write_text('detektor = "baseline"\n[scp]\nprot = 4242\n')
    result = run_cli("status", "--config", str(path), cwd=tmp_path, env={"CXR_DASHBOARD__PROT": "1"})
    assert result.returncode == 2
    assert sorted(result.stdout.splitlines()) == sorted(
        [
            "configuration error: environment CXR_DASHBOARD__PROT: dashboard.prot: unknown key (did you mean port?)",
            f"configuration error: {path}: scp.prot: unknown key (did you mean port?)",
            f"configuration error: {path}: detektor: unknown key (did you mean detector?)",
        ]
    )


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cxr.toml"
    path.write_text("data_dir = \n")
    with pytest.raises(ConfigurationError, match=rf"^{path}: not valid TOML"):
        Settings.load(path)
