"""The Telegram adapter (python-telegram-bot 22); ``app`` is what ``imagebot run`` starts."""

import os

# Opt in to PTB's coming API where time periods (``RetryAfter.retry_after``…) are
# ``timedelta``s: without it PTB 22 warns (PTBDeprecationWarning) on every 429, from inside
# its own ``RetryAfter`` constructor. PTB reads the variable at each use.
os.environ.setdefault("PTB_TIMEDELTA", "1")
