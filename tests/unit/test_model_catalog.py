"""The model catalog as data: loading, validation, enabling, and what the running
catalog learns (issue 14)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.errors import ConfigurationError, InvalidRequest
from core.generation.models import (
    CatalogError,
    EnabledModel,
    ModelCatalog,
    ProviderRoute,
    load_catalog,
    parse_enabled,
    resolve_options,
    shipped_catalog_text,
)
from core.generation.ports import ModelCall
from core.generation.pricing import PriceTable
from core.generation.providers import refused_message
from core.generation.providers.openai_images import _refused_option
from core.i18n import render
from core.types import GenerateOptions, ResolvedOptions, UserSettingsView

TODAY = date(2026, 12, 6)


def test_the_shipped_catalog_is_valid_and_holds_the_old_table() -> None:
    specs = load_catalog()
    assert {"gpt-image-2", "gpt-image-1.5", "gpt-image-1-mini", "gpt-image-1", "demo"} <= set(specs)
    two = specs["gpt-image-2"]
    assert two.free_sizes and two.free_size is not None and two.free_size.accepts(2048, 1152)
    assert not two.free_size.accepts(4000, 1000)
    assert specs["gpt-image-1"].retired and specs["gpt-image-1"].successor == "gpt-image-2"
    assert specs["gpt-image-1.5"].input_fidelity and not specs["gpt-image-1-mini"].input_fidelity
    assert dict(specs["gpt-image-1-mini"].prices) == {"low": 1, "medium": 2, "high": 4, "auto": 4}
    assert "models" in shipped_catalog_text()


def test_operator_file_overrides_field_by_field_and_adds_models(tmp_path: Path) -> None:
    path = tmp_path / "ops.json"
    path.write_text(
        '{"models": {"gpt-image-2": {"prices": {"high": 20}, "backgrounds": ["auto"]},'
        ' "mine": {"qualities": ["high"], "prices": {"high": 3}}}}'
    )
    specs = load_catalog(path)
    assert dict(specs["gpt-image-2"].prices) == {"low": 1, "medium": 4, "high": 20, "auto": 16}
    assert specs["gpt-image-2"].backgrounds == ("auto",)
    assert specs["mine"].defaults["quality"] == "high"  # its own first value
    table = PriceTable.from_catalog(specs)
    opts = ResolvedOptions("mine", "1024x1024", "high", "png", "auto", 2)
    assert table.price(opts) == 6


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not toml at all [", "not valid TOML or JSON"),
        ("[other]\nx = 1\n", "'models' table"),
        ('[models."gpt-image-2"]\nstreaming = "yes"\n', "field 'streaming'"),
        ('[models."gpt-image-2"]\nsizes = ["big"]\n', "field 'sizes'"),
        ('[models."gpt-image-2"]\nfree_size = { max_edge = -5 }\n', "field 'free_size'"),
        ('[models."gpt-image-2"]\ndefaults = { quality = "ultra" }\n', "field 'defaults'"),
        ('[models."gpt-image-2"]\nprices = { ultra = 1 }\n', "field 'prices'"),
        ('[models."gpt-image-2"]\nprices = { low = 1e9 }\n', "field 'prices'"),
        ('[models."gpt-image-2"]\nsuccessor = "gpt-image-2"\n', "field 'successor'"),
        ('[models."bad name!"]\nprices = { low = 1 }\n', "not a valid name"),
        ('[models."gpt-image-2"]\nprovider = "midjourney"\n', "field 'provider'"),
    ],
)
def test_malformed_catalogs_name_the_model_and_field(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert words in str(err.value)
    assert "IMAGEBOT_MODELS_FILE" in str(err.value)


def test_a_missing_operator_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "nope.toml")


def test_enabled_models_from_names_or_json() -> None:
    assert parse_enabled("", "gpt-image-2") == (EnabledModel("gpt-image-2"),)
    assert [m.name for m in parse_enabled(" a , b ", "x")] == ["a", "b"]
    entries = parse_enabled(
        '[{"model": "m", "base_url": "http://127.0.0.1:1/v1", "api_key_env": "M_KEY"}, "n"]', "x"
    )
    assert entries[0].route == ProviderRoute("http://127.0.0.1:1/v1", "M_KEY")
    assert entries[1].route == ProviderRoute()


@pytest.mark.parametrize(
    "text",
    [
        "a,a",
        "[1]",
        '[{"model": "m", "base_url": "file:///etc/passwd"}]',
        '[{"model": "m", "api_key_env": "$(rm -rf)"}]',
        '[{"model": "m", "extra": 1}]',
        "[",
        "x" * 500,
        "bad name",
    ],
)
def test_hostile_enabled_lists_are_refused(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_enabled(text, "gpt-image-2")


def catalog(*names: str) -> ModelCatalog:
    return ModelCatalog(load_catalog(), [EnabledModel(n) for n in names])


def test_choosing_a_model() -> None:
    cat = catalog("gpt-image-2", "gpt-image-1-mini")
    assert cat.choose(None, None, TODAY) == "gpt-image-2"
    assert cat.choose("GPT Image 1 mini", None, TODAY) == "gpt-image-1-mini"
    assert cat.choose(None, "gpt-image-1-mini", TODAY) == "gpt-image-1-mini"
    assert cat.choose(None, "gpt-image-1", TODAY) == "gpt-image-2"  # retired: successor
    with pytest.raises(InvalidRequest, match="gpt-image-2, gpt-image-1-mini"):
        cat.choose("gpt-image-1.5", None, TODAY)
    with pytest.raises(InvalidRequest):
        cat.choose("x" * 10_000, None, TODAY)
    cat.note_provider("gpt-image-1-mini", known=True, shutdown_date=date(2026, 12, 1))
    assert cat.offered(TODAY) == ("gpt-image-2",)
    assert cat.choose(None, "gpt-image-1-mini", TODAY) == "gpt-image-2"


def test_a_refused_value_is_withdrawn_and_the_message_names_what_to_use() -> None:
    cat = catalog("gpt-image-2")
    assert cat.mark_refused("gpt-image-2", "background", "transparent")
    assert not cat.mark_refused("gpt-image-2", "background", "transparent")  # logged once
    spec = cat.spec("gpt-image-2")
    assert spec.backgrounds == ("auto", "opaque")
    message = render(refused_message(spec, "background", "transparent"))
    assert "transparent" in message and "auto, opaque" in message and "charged" in message
    cat.mark_refused("gpt-image-2", "size", "*")
    assert cat.spec("gpt-image-2").free_size is None
    with pytest.raises(InvalidRequest):
        resolve_options(GenerateOptions(size="2048x1152"), model="gpt-image-2", catalog=cat)


def test_saved_defaults_another_model_does_not_take_give_way() -> None:
    cat = catalog("gpt-image-2", "gpt-image-1-mini")
    saved = UserSettingsView(size="2048x1152", background="transparent")
    resolved = resolve_options(
        GenerateOptions(), model="gpt-image-1-mini", defaults=saved, catalog=cat
    )
    assert resolved.size == "1024x1024"  # the free size was saved for gpt-image-2
    assert resolved.background == "transparent"
    with pytest.raises(InvalidRequest):  # typed now: refused, naming the sizes
        resolve_options(GenerateOptions(size="2048x1152"), model="gpt-image-1-mini", catalog=cat)


def _call(**options: object) -> ModelCall:
    values: dict[str, object] = {
        "model": "gpt-image-2",
        "size": "1024x1024",
        "quality": "medium",
        "output_format": "png",
        "background": "auto",
        "n": 1,
    }
    values.update(options)
    return ModelCall(prompt="p", options=ResolvedOptions(**values), user_hash="h")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "call", "expected"),
    [
        (
            {
                "message": "Transparent background is not supported for this model.",
                "type": "image_generation_user_error",
                "param": "background",
                "code": "invalid_value",
            },
            _call(background="transparent"),
            ("background", "transparent"),
        ),
        (
            {
                "message": "Invalid value: '1536x1024'. Supported values are: '1024x1024' and "
                "'auto'.",
                "type": "invalid_request_error",
                "param": "size",
                "code": "invalid_value",
            },
            _call(size="1536x1024"),
            ("size", "1536x1024"),
        ),
        (
            {
                "message": "Invalid value: '2048x1152'. Supported values are: '1024x1024', "
                "'1024x1536', '1536x1024', and 'auto'.",
                "type": "invalid_request_error",
                "param": "size",
                "code": "invalid_value",
            },
            _call(size="2048x1152"),
            ("size", "*"),
        ),
        (
            {
                "message": "Unknown parameter: 'input_fidelity'.",
                "type": "invalid_request_error",
                "param": "input_fidelity",
                "code": "unknown_parameter",
            },
            _call(),
            ("input_fidelity", "*"),
        ),
        (  # a rule broken, not a value withdrawn: nothing is learned
            {
                "message": "Invalid size '2000x1000': width and height must both be multiples "
                "of 16.",
                "type": "invalid_request_error",
                "param": "size",
                "code": "invalid_value",
            },
            _call(size="2000x1000"),
            None,
        ),
        (  # a combination, not a withdrawn value
            {
                "message": "Transparent background requires output_format to be 'png' or 'webp'.",
                "type": "invalid_request_error",
                "param": "background",
                "code": "invalid_value",
            },
            _call(background="transparent", output_format="jpeg"),
            None,
        ),
        (  # the prompt is never an option to withdraw
            {
                "message": "Invalid 'prompt': string too long.",
                "type": "invalid_request_error",
                "param": "prompt",
                "code": "string_above_max_length",
            },
            _call(),
            None,
        ),
    ],
)
def test_which_400s_withdraw_an_option(
    error: dict[str, object], call: ModelCall, expected: tuple[str, str] | None
) -> None:
    assert _refused_option(error, 400, error["param"], error["code"], call) == expected  # type: ignore[arg-type]
    assert _refused_option(error, 422, error["param"], error["code"], call) is None  # type: ignore[arg-type]
