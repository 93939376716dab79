"""Ledger lines in a customer's words (``/balance``): never the ledger's kinds."""

from __future__ import annotations

from collections.abc import Iterable

from core.i18n import Msg, msg
from core.types import LedgerLine

WORDS = {
    "hold": "ledger.hold",
    "capture": "ledger.capture",
    "release": "ledger.release",
    "grant": "ledger.grant",
    "adjust": "ledger.adjust",
    "refund": "ledger.refund",
    "dispute": "ledger.dispute",
}


def movements(lines: Iterable[LedgerLine]) -> list[tuple[LedgerLine, Msg]]:
    """The lines worth showing with their words: a hold whose job was captured reads
    "paid for an image" (the capture itself moves nothing and is left out), one still
    running "reserved for an image"; a purchase "bought N credits"."""
    items = list(lines)
    captured = {line.reference for line in items if line.kind == "capture" and line.reference}
    out = []
    for line in items:
        if line.amount == 0:
            continue
        if line.kind == "purchase":
            words = msg("ledger.purchase", count=line.amount)
        elif line.kind == "hold" and line.reference in captured:
            words = Msg("ledger.capture")
        else:
            words = Msg(WORDS.get(line.kind, "ledger.other"))
        out.append((line, words))
    return out
