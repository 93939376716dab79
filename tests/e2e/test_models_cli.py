"""`imagebot models` and check-config's model section, in real subprocesses (issue 14)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.test_cli_console import clean_env, imagebot
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow


def test_a_malformed_catalog_is_refused_by_check_config_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text('[models."gpt-image-2"]\nqualities = ["low", "ultra"]\n')
    env = clean_env(IMAGEBOT_MODELS_FILE=str(bad))
    result = imagebot("check-config", cwd=tmp_path, env=env)
    assert result.returncode == 2
    line = next(x for x in result.stdout.splitlines() if "IMAGEBOT_MODELS_FILE" in x)
    assert line.startswith("error")
    assert "model 'gpt-image-2'" in line and "field 'qualities'" in line and "ultra" in line
    # `imagebot models` refuses it too, with the same words.
    models = imagebot("models", cwd=tmp_path, env=env)
    assert models.returncode == 2 and "field 'qualities'" in models.stderr


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[models."gpt-image-2"]\nprices = { low = -1 }\n', "prices"),
        ('[models."gpt-image-2"]\nmax_inputs = 10000\n', "max_inputs"),
        ('[models."gpt-image-2"]\nsuccessor = "nope"\n', "successor"),
        ('[models."my-model"]\nlabel = "Mine"\n', "prices"),
        ('[models."gpt-image-2"]\ncolour = "red"\n', "colour"),
        ('{"models": {"gpt-image-2": {"shutdown_date": "tomorrow"}}}', "shutdown_date"),
    ],
)
def test_check_config_names_each_bad_field(tmp_path: Path, text: str, field: str) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text(text)
    result = imagebot("check-config", cwd=tmp_path, env=clean_env(IMAGEBOT_MODELS_FILE=str(bad)))
    assert result.returncode == 2
    assert f"field '{field}'" in result.stdout


def test_imagebot_models_prints_the_effective_catalog(tmp_path: Path) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text(
        '[models."gpt-image-2".prices]\nmedium = 7\n\n'
        '[models."local-flux"]\nlabel = "Local Flux"\nqualities = ["low", "high"]\n'
        "prices = { low = 2, high = 5 }\n"
    )
    env = clean_env(
        IMAGEBOT_MODELS_FILE=str(catalog),
        IMAGEBOT_MODELS='["gpt-image-2", {"model": "local-flux", '
        '"base_url": "http://127.0.0.1:9/v1", "api_key_env": "LOCAL_KEY"}]',
    )
    result = imagebot("models", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "enabled: gpt-image-2, local-flux" in out
    assert "gpt-image-2  (GPT Image 2; enabled, default)" in out
    assert "low 1, medium 7, high 16" in out
    assert "local-flux  (Local Flux; enabled)" in out
    assert "http://127.0.0.1:9/v1 (key in LOCAL_KEY)" in out
    assert "gpt-image-1  (GPT Image 1; available, retired" in out


async def test_check_config_warns_about_a_shutdown_date_from_the_provider(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    openai_fake.set_models({"gpt-image-2": None, "gpt-image-1.5": "2027-01-15"})
    env = clean_env(
        OPENAI_API_KEY="sk-test-check-config-123",
        OPENAI_BASE_URL=openai_fake.base_url,
        IMAGEBOT_MODELS="gpt-image-2,gpt-image-1.5,gpt-image-1-mini",
    )
    result = await asyncio.to_thread(imagebot, "check-config", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    warnings = [x for x in result.stdout.splitlines() if x.startswith("warning")]
    assert any("gpt-image-1.5 will be shut down on 2027-01-15" in x for x in warnings)
    assert any("no longer knows the model gpt-image-1-mini" in x for x in warnings)
    paths = {r.path for r in openai_fake.requests}
    assert "/v1/models" in paths and "/v1/models/gpt-image-1.5" in paths
