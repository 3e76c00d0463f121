"""docker-compose.yml as compose reads it: every service's command parses with the real CLI
(antifit's, Ray's), and the settings each antifit service reads are valid — with the defaults
the file gives and with each profile's documented .env. Running it for real is
scripts/compose_check.sh (README), not part of every test run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from antifit.cli import build_parser
from app.core.config import Settings
from trainer.cli import gather
from trainer.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
ANTIFIT_IMAGE = "antifit:latest"
KEYS = '[{"name": "alice", "role": "read-write", "sha256": "' + "0" * 64 + '"}]'
# what .env holds for each profile (README, .env.example), on top of the API keys
PROFILES: dict[str, dict[str, str]] = {
    "default": {},
    "train": {"ANTIFIT_TRAIN_DATASET": "0" * 32, "ANTIFIT_TRAIN_JOB": "1" * 32},
    "postgres": {
        "ANTIFIT_DATABASE_URL": "postgresql+psycopg://antifit:antifit@postgres:5432/antifit"
    },
    "ray": {
        "ANTIFIT_EXECUTOR": "ray",
        "RAY_ADDRESS": "ray://ray-head:10001",
        "RAY_AUTH_TOKEN": "f" * 64,
    },
}
PROFILES["replicas"] = PROFILES["postgres"]

_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X:?error}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        given = env.get(name, "")
        if m.group(2) in (":?", "?") and not given:
            raise ValueError(f"{name}: {m.group(3)}")
        if m.group(2) in (":-", "-"):
            return given or m.group(3)
        return given

    return _VARIABLE.sub(one, value)


def services(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    with (ROOT / "docker-compose.yml").open() as f:
        data = yaml.safe_load(f)  # anchors and << merges resolved
    out: dict[str, dict[str, Any]] = interpolate(data["services"], env)
    return out


def active(profile: str, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in services(env).items()
        if not s.get("profiles") or profile in s["profiles"]
    }


def antifit_args(service: dict[str, Any]) -> list[str] | None:
    """The argv of the antifit CLI a service runs, or None if it runs something else."""
    if service.get("image") != ANTIFIT_IMAGE or "entrypoint" in service:
        return None
    return [str(a) for a in service["command"]]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profile_s_services_run_valid_commands_with_valid_settings(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"ANTIFIT_API_KEYS": KEYS, **PROFILES[profile]}
    checked = 0
    for name, service in active(profile, env).items():
        argv = antifit_args(service)
        if argv is None:
            continue
        args = build_parser().parse_args(argv)  # SystemExit on an unknown flag
        environment = {k: str(v) for k, v in service.get("environment", {}).items()}
        for key in list(__import__("os").environ):
            if key.startswith(("ANTIFIT_", "RAY_")):
                monkeypatch.delenv(key)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        if args.command == "serve":
            settings = Settings()
            assert settings.executor == PROFILES[profile].get("ANTIFIT_EXECUTOR", "local"), name
            if profile in ("postgres", "replicas"):
                assert "@postgres:" in settings.sqlalchemy_url()
        elif args.command == "train":
            config = TrainConfig.model_validate(gather(args, environment))
            assert config.dataset == PROFILES["train"]["ANTIFIT_TRAIN_DATASET"]
            assert config.job == PROFILES["train"]["ANTIFIT_TRAIN_JOB"]
        checked += 1
    assert checked >= 1


def test_the_default_profile_needs_nothing_but_keys() -> None:
    with pytest.raises(ValueError, match="ANTIFIT_API_KEYS"):
        services({})
    names = set(active("default", {"ANTIFIT_API_KEYS": KEYS}))
    assert names == {"api"}  # no idle PostgreSQL or Ray next to the embedded defaults


def test_ray_nodes_run_ray_start_with_options_ray_accepts() -> None:
    ray_scripts = pytest.importorskip("ray.scripts.scripts")
    env = {"ANTIFIT_API_KEYS": KEYS, **PROFILES["ray"]}
    nodes = {n: s for n, s in active("ray", env).items() if n.startswith("ray-")}
    assert set(nodes) == {"ray-head", "ray-worker"}
    for name, service in nodes.items():
        entry = [str(a) for a in service["entrypoint"]]
        if entry[:2] == ["sh", "-c"]:
            entry = shlex.split(entry[2].split("exec ", 1)[1])
        assert entry[:2] == ["ray", "start"], name
        ray_scripts.start.make_context("start", entry[2:])  # click raises on a bad option
        assert service["image"] == ANTIFIT_IMAGE  # augmenters and resources import there
        assert "antifit-data:/data" in service["volumes"]


def test_profile_services_refuse_to_start_when_the_api_is_not_set_to_use_them() -> None:
    """A profile's infrastructure without the API pointed at it would sit idle: its entrypoint
    exits with a message instead (checked here by running the guard with sh)."""
    import subprocess

    env = {"ANTIFIT_API_KEYS": KEYS}
    for name, profile in (("postgres", "postgres"), ("ray-head", "ray")):
        for configured in (False, True):
            given = {**env, **(PROFILES[profile] if configured else {})}
            service = services(given)[name]
            script = service["entrypoint"][2].split("exec ", 1)[0] + "echo started"
            run = subprocess.run(
                ["sh", "-c", script],
                env={k: str(v) for k, v in service["environment"].items()},
                capture_output=True,
                text=True,
            )
            if configured:
                assert run.returncode == 0 and run.stdout.strip() == "started", run.stderr
            else:
                assert run.returncode == 2 and ".env" in run.stderr, (name, run.stderr)


def test_the_api_builds_the_image_every_antifit_service_runs_with_its_volumes() -> None:
    with (ROOT / "docker-compose.yml").open() as f:
        volumes = set(yaml.safe_load(f)["volumes"])
    all_services = services({"ANTIFIT_API_KEYS": KEYS})
    api = all_services["api"]
    assert api["build"]["context"] == "." and api["build"]["args"]["TORCH"].endswith("+cpu")
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    for name, service in all_services.items():
        assert "image" in service, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in volumes or (ROOT / source).exists() or source.startswith("/"), volume
    worker = all_services["worker"]
    assert worker["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert worker["restart"] == "on-failure:3"  # a configuration error is not retried for ever


def test_the_image_s_extras_are_ray_unless_env_names_others_all_defined_by_the_package() -> None:
    import tomllib

    defined = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    env = {"ANTIFIT_API_KEYS": KEYS}
    assert services(env)["api"]["build"]["args"]["EXTRAS"] == "ray"
    extras = services({**env, "ANTIFIT_EXTRAS": "ray,zh"})["api"]["build"]["args"]["EXTRAS"]
    assert extras == "ray,zh" and set(extras.split(",")) <= defined
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^ANTIFIT_EXTRAS=ray$", example, re.M)
