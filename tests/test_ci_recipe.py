"""The CI recipe (docs/ci.md): this repository's workflow and the template
for users' programs are valid YAML of the GitHub Actions shape, every
tatara-build invocation in them uses commands and options the CLI has, and
every repository path they name exists. (GitHub Actions itself cannot run
here; docs/ci.md says so.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.main import get_command

from tatara_build.cli import app

yaml = pytest.importorskip("yaml")
REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = [REPO / ".github" / "workflows" / "ci.yml", REPO / "docs" / "ci" / "tatara-build-template.yml"]


def _runs(workflow: dict) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def _invocations(script: str) -> list[list[str]]:
    """`tatara-build CMD ARGS…` commands in a shell script (after joining
    continued lines); words with shell expansions are kept as they are."""
    script = script.replace("\\\n", " ")
    found = []
    for line in script.splitlines():
        m = re.search(r"(?:^|\s)(?:\.venv/bin/)?tatara-build (\w+)(.*?)(?:\|\||;|$)", line)
        if m:
            found.append([m[1], *shlex.split(m[2])])
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_shape_and_tatara_build_commands(path):
    workflow = yaml.safe_load(path.read_text())
    assert workflow["name"] and workflow["jobs"]
    assert {"push", "pull_request"} <= set(workflow[True] if True in workflow else workflow["on"])  # yaml 1.1: on -> True
    for job in workflow["jobs"].values():
        assert job["runs-on"] and job["timeout-minutes"] <= 60 and job["steps"]
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step)
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
    commands = get_command(app).commands
    invocations = [inv for script in _runs(workflow) for inv in _invocations(script)]
    assert {inv[0] for inv in invocations} >= {"repro", "test"}
    for name, *args in invocations:
        assert name in commands, name
        known = {opt for param in commands[name].params for opt in getattr(param, "opts", [])}
        for arg in args:
            if arg.startswith("-"):
                assert arg in known, f"{path.name}: tatara-build {name} has no option {arg}"
    text = path.read_text()
    assert "--kernel all" in text and "--junit" in text and "upload-artifact" in text
    assert "nix build .#" in text and "nix flake check" in text


def test_repository_paths_named_by_the_workflow_exist():
    text = WORKFLOWS[0].read_text()
    for name in re.findall(r"(?:bash |hashFiles\(')([\w./-]+\.(?:sh|json)|\.ci/run)", text):
        assert (REPO / name).exists(), name
    assert (REPO / "examples" / "drop-syn.tlisp").is_file()
