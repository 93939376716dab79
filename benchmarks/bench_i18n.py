"""What the message catalog costs: loading the ten catalogs once, and rendering a typical
/balance answer (nested plurals, a date per line, HTML escaping) per language.

Prints one JSON line of figures."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from bot.telegram.render import balance_text, help_text
from core.i18n import LANGUAGES, reload_catalogs, t, use_language
from core.types import BalanceView, LedgerLine


def main() -> None:
    reload_catalogs()
    start = time.perf_counter()
    t("credits", "en", count=1)  # compiles every catalog
    load_ms = (time.perf_counter() - start) * 1000
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    view = BalanceView(
        available=1234,
        held=10,
        recent=tuple(
            LedgerLine(kind, amount, now, f"job{i}")
            for i, (kind, amount) in enumerate(
                [("hold", -10), ("capture", 0), ("purchase", 100), ("release", 5), ("grant", 20)]
            )
        ),
    )
    figures: dict[str, float] = {"catalog_load_ms": round(load_ms, 1)}
    rounds = 300
    for lang in ("en", "ar", "uk"):
        with use_language(lang):
            start = time.perf_counter()
            for _ in range(rounds):
                balance_text(view)
                help_text()
            per = (time.perf_counter() - start) / (rounds * 2) * 1e6
        figures[f"render_us_{lang}"] = round(per, 1)
    figures["languages"] = len(LANGUAGES)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
