"""Every table of imagebot: importing this module registers them all on ``Base.metadata``.

Each area keeps its models in a module of its own; Alembic, the tests and the privacy
scans (which walk the whole schema) import this one.
"""

from __future__ import annotations

import storage.billing.models
import storage.gallery.models
import storage.generation.models
import storage.privacy.models
import storage.safety.models  # noqa: F401
from storage.models import Base

__all__ = ["Base"]
