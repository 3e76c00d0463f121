"""The setup path is one script: README, CI and the Dockerfile all go through it; the compose
file runs commands that exist. No Docker engine runs here, so this is what can be checked."""

import re

import yaml

from antifit.cli import build_parser
from tests.conftest import ROOT
from trainer.cli import gather
from trainer.config import TrainConfig


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


def test_compose_file() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    assert api["build"] == "."
    assert "antifit-data:/data" in api["volumes"] and "antifit-data" in compose["volumes"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    build_parser().parse_args(api["command"])  # a command the image's entrypoint knows
    worker = compose["services"]["worker"]
    assert worker["image"] == api["image"] and worker["profiles"] == ["train"]
    assert worker["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert "antifit-runs:/runs" in worker["volumes"] and "antifit-runs" in compose["volumes"]
    args = build_parser().parse_args(worker["command"])
    environ = {  # compose's interpolation, with a dataset given and defaults elsewhere
        key: re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), value)
        for key, value in worker["environment"].items()
    } | {"ANTIFIT_TRAIN_DATASET": "ds1"}
    config = TrainConfig.model_validate(gather(args, environ))
    assert config.service == "http://api:8000" and config.dataset == "ds1"
    assert config.output_dir == "/runs/latest" and config.preset == "enhanced"
    postgres = compose["services"]["postgres"]
    assert postgres["profiles"] == ["postgres"] and "healthcheck" in postgres
    docker = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", docker, flags=re.M)
    assert cmd is not None
    build_parser().parse_args(yaml.safe_load(cmd.group(1)))


def test_setup_installs_torch_before_the_project() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert setup.index('"torch==2.13.0"') < setup.index('-e "$root$extras"')
