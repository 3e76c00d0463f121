"""The setup path is one script: README, CI and the Dockerfile must all go through it."""

import re

from tests.conftest import ROOT


def test_ci_runs_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert 'scripts/setup.sh" --dev' in (ROOT / "scripts" / "test.sh").read_text()


def test_readme_run_command_uses_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    first = next(line for line in readme.splitlines() if line.startswith("scripts/setup.sh &&"))
    for path in re.findall(r"(?:examples|scripts)/[\w/.-]+", first):
        assert (ROOT / path).exists(), path


def test_dockerfile_runs_the_setup_script_and_copies_existing_paths() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    assert "scripts/setup.sh --venv /opt/venv" in docker
    for src in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", docker, flags=re.M):
        for path in src.split():
            assert (ROOT / path).exists(), path
    assert "USER antifit" in docker


def test_setup_installs_torch_before_the_project() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert setup.index('"torch==2.13.0"') < setup.index('-e "$root$extras"')
