"""The setup path is one script: README, CI and the Dockerfile all go through it (the compose
file: tests/test_compose.py)."""

import re

import yaml

from antifit.cli import build_parser
from tests.conftest import ROOT


def test_ci_runs_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert 'scripts/setup.sh" --dev' in (ROOT / "scripts" / "test.sh").read_text()


def test_readme_commands_use_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in re.findall(r"\b((?:examples|scripts|augmenters/data)/[\w/.-]+\w)", readme):
        assert (ROOT / path).exists(), path


def test_dockerfile_runs_the_setup_script_and_copies_existing_paths() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    assert "scripts/setup.sh --venv /opt/venv" in docker
    for src in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", docker, flags=re.M):
        for path in src.split():
            assert (ROOT / path).exists(), path
    assert "USER antifit" in docker and 'VOLUME ["/data", "/runs"]' in docker
    assert "/readyz" in docker.split("HEALTHCHECK", 1)[1]
    cmd = re.search(r"^CMD (\[.*\])$", docker, flags=re.M)
    assert cmd is not None
    build_parser().parse_args(yaml.safe_load(cmd.group(1)))  # a command the entrypoint knows
    # the dependency layer comes before the sources: editing a .py reinstalls nothing
    assert docker.index("--deps-only") < docker.index("COPY augmenters")
    assert "rm -rf /var/lib/apt/lists/*" in docker


def test_setup_installs_torch_before_the_project() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert setup.index("torch=${ANTIFIT_TORCH:-torch==2.13.0}") < setup.index('-e "$root$extras"')
