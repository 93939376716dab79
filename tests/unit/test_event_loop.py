"""`imagebot run` picks its event loop from the settings: uvloop unless turned off."""

from __future__ import annotations

import asyncio

import uvloop

from bot.cli import event_loop_factory
from core.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_run_uses_uvloop_by_default() -> None:
    factory = event_loop_factory(settings())
    assert factory is uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)


def test_uvloop_can_be_turned_off() -> None:
    assert event_loop_factory(settings(uvloop=False)) is None
