"""Parsing inline options of text commands (Telegram, the console).

``/imagine a red fox --size 1536x1024 --quality high --n 2 --model gpt-image-2`` ->
prompt ``a red fox`` and the options. Unknown options and malformed values raise
:class:`InvalidRequest` naming what is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.errors import InvalidRequest
from core.generation.models import MAX_N_PER_JOB, ModelSpec, allowed_sizes_text, nearest_size
from core.i18n import msg
from core.types import GenerateOptions

_RATIO = re.compile(r"^(\d{1,3})\s*[:x/]\s*(\d{1,3})$")
VALUE_OPTIONS = ("size", "ar", "quality", "n", "format", "background", "model")
FLAG_OPTIONS = ("transparent",)


@dataclass(frozen=True)
class ParsedCommand:
    """A prompt, its options, and any extra options the caller allowed (``--ref``)."""

    prompt: str
    options: GenerateOptions
    extra: dict[str, list[str]] = field(default_factory=dict)


def accepted_text(extra: tuple[str, ...] = ()) -> str:
    """The accepted options, for error messages and /help."""
    parts = [
        "--size WxH",
        "--ar W:H",
        "--quality low|medium|high",
        f"--n 1..{MAX_N_PER_JOB}",
        "--format png|jpeg|webp",
        "--transparent",
        "--model NAME",
    ]
    parts += [f"--{name} VALUE" for name in extra]
    return ", ".join(parts)


def parse_options(text: str, spec: ModelSpec, *, extra: tuple[str, ...] = ()) -> ParsedCommand:
    """Split ``text`` into prompt words and ``--options``; values are checked later
    against the model's table, except the shape of ``--ar`` and ``--n``."""
    words: list[str] = []
    values: dict[str, str] = {}
    extras: dict[str, list[str]] = {}
    tokens = text.split()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and len(token) > 2:
            name, eq, inline = token[2:].partition("=")
            name = name.lower().replace("_", "-")
            if name in FLAG_OPTIONS:
                values[name] = "true"
                i += 1
                continue
            if name in VALUE_OPTIONS or name in extra:
                if eq:
                    value = inline
                    i += 1
                elif i + 1 < len(tokens):
                    value = tokens[i + 1]
                    i += 2
                else:
                    raise InvalidRequest(msg("tg.opt.needs_value", name=name))
                if name in extra:
                    extras.setdefault(name, []).append(value)
                else:
                    values[name] = value
                continue
            raise InvalidRequest(
                msg("tg.opt.unknown", name=name[:30], options=accepted_text(extra))
            )
        words.append(token)
        i += 1

    size = values.get("size")
    if "ar" in values:
        m = _RATIO.match(values["ar"])
        if not m or int(m.group(2)) == 0 or int(m.group(1)) == 0:
            raise InvalidRequest(msg("tg.opt.ar"))
        if size is not None:
            raise InvalidRequest(msg("tg.opt.size_or_ar"))
        size = nearest_size(int(m.group(1)) / int(m.group(2)), spec)
    n: int | None = None
    if "n" in values:
        try:
            n = int(values["n"])
        except ValueError:
            raise InvalidRequest(msg("tg.opt.n", max=MAX_N_PER_JOB)) from None
    background = values.get("background")
    if values.get("transparent"):
        background = "transparent"
    if size is not None and size != "auto" and "x" not in size.lower():
        raise InvalidRequest(msg("tg.opt.sizes", sizes=allowed_sizes_text(spec)))
    return ParsedCommand(
        prompt=" ".join(words),
        options=GenerateOptions(
            size=size,
            quality=values.get("quality"),
            output_format=values.get("format"),
            background=background,
            n=n,
            model=values.get("model"),
        ),
        extra=extras,
    )
