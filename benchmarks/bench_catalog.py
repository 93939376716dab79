"""Benchmark: what the model catalog adds to each job and to start-up.

- ``load_ms``: reading and validating the shipped catalog plus an operator file that
  overrides a price and adds a model (start-up, ``check-config``, ``imagebot models``).
- ``choose_resolve_price_us``: choosing the model of a job (user's saved choice, one of
  three enabled models), checking its options against the running catalog (with one
  option withdrawn) and pricing it: the per-submit work that replaced the in-code table.
- ``refusals_withdrawn_per_s``: learning a refused option (the running catalog's write path).

Run: ``.venv/bin/python benchmarks/bench_catalog.py [--rounds N]``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.generation.models import (
    EnabledModel,
    ModelCatalog,
    load_catalog,
    resolve_options,
)
from core.generation.pricing import PriceTable
from core.types import GenerateOptions, UserSettingsView

OPERATOR = """
[models."gpt-image-2".prices]
medium = 5

[models."local-flux"]
qualities = ["low", "high"]
prices = { low = 2, high = 5 }
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "models.toml"
        path.write_text(OPERATOR)
        start = time.perf_counter()
        loads = 50
        for _ in range(loads):
            specs = load_catalog(path)
        load_ms = (time.perf_counter() - start) * 1000 / loads
    catalog = ModelCatalog(
        specs, [EnabledModel(n) for n in ("gpt-image-2", "gpt-image-1-mini", "local-flux")]
    )
    catalog.mark_refused("gpt-image-2", "background", "transparent")
    prices = PriceTable.from_catalog(catalog.all_specs())
    today = date(2026, 12, 6)
    saved = UserSettingsView(quality="high", model="gpt-image-1-mini")
    options = GenerateOptions(size="1536x1024")
    start = time.perf_counter()
    for _ in range(args.rounds):
        model = catalog.choose(options.model, saved.model, today)
        resolved = resolve_options(options, model=model, defaults=saved, catalog=catalog)
        prices.price(resolved)
    per_job_us = (time.perf_counter() - start) * 1e6 / args.rounds
    start = time.perf_counter()
    for i in range(args.rounds):
        catalog.mark_refused("local-flux", "size", f"{i}x{i}")
    refusals_per_s = args.rounds / (time.perf_counter() - start)
    print(
        json.dumps(
            {
                "benchmark": "catalog",
                "load_ms": round(load_ms, 3),
                "choose_resolve_price_us": round(per_job_us, 2),
                "refusals_withdrawn_per_s": round(refusals_per_s),
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
