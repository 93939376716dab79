"""The Discord adapter: slash commands, buttons, modals and DMs on discord.py 2.x.

Thin by design: each handler parses the interaction, makes one core call, renders the
answer (render.py) and acknowledges; job progress and results arrive through the
Notifier port (notifier.py). ``app.start(core)`` is what ``imagebot run`` calls.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # discord.py imports the standard library's audioop for voice support, which imagebot
    # never uses; Python 3.11 and 3.12 warn that audioop is deprecated on that import.
    warnings.filterwarnings("ignore", message=".*audioop.*", category=DeprecationWarning)
    import discord  # noqa: F401
