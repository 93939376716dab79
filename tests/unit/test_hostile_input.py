"""Hostile text: the option parser and prompt cleaning never fail in an unhandled way."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidRequest
from core.generation.models import resolve_options, spec_for
from core.generation.options import parse_options
from core.text import clean_prompt

SPEC = spec_for("gpt-image-2")
tokens = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "--size",
            "--ar",
            "--quality",
            "--n",
            "--format",
            "--transparent",
            "--background",
            "--",
            "---",
            "--size=",
            "--n=-1",
            "--ar=0:0",
            "1536x1024",
            "3:2",
            "high",
            "9" * 30,
            "\u202e",
            "\u200b" * 5,
            "@everyone",
            "<b>",
            "&amp;",
            "\x00",
            "🦊",
        ]
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(tokens, max_size=12))
def test_option_parser_never_raises_anything_but_invalid_request(words: list[str]) -> None:
    text = " ".join(words)
    try:
        parsed = parse_options(text, SPEC)
        resolve_options(parsed.options, model=SPEC.name)
    except InvalidRequest as exc:
        assert exc.user_message and len(exc.user_message) < 400


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500))
def test_prompt_cleaning_removes_invisible_and_control_characters(text: str) -> None:
    try:
        cleaned = clean_prompt(text, max_chars=32_000)
    except InvalidRequest:
        return
    assert cleaned == cleaned.strip()
    assert not any(ch in cleaned for ch in "\u202e\u202d\u2066\u200b\u200e\u200f\ufeff\x00\x1b")


def test_huge_prompt_is_refused_with_its_length() -> None:
    try:
        clean_prompt("a" * 40_000, max_chars=32_000)
    except InvalidRequest as exc:
        assert "40,000" in exc.user_message and "32,000" in exc.user_message
    else:  # pragma: no cover
        raise AssertionError("a prompt over the limit was accepted")


def test_aspect_ratio_maps_to_the_nearest_allowed_size() -> None:
    assert parse_options("x --ar 3:2", SPEC).options.size == "1536x1024"
    assert parse_options("x --ar 9:16", SPEC).options.size == "1024x1536"
    assert parse_options("x --ar 1:1", SPEC).options.size == "1024x1024"
