"""Progress bars that can be switched off (``progress=false``)."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm


def progress_bar(items: Any, total: int, desc: str, enabled: bool) -> Any:
    """``tqdm`` unless progress bars are off."""
    return tqdm(items, total=total, desc=desc, leave=False, disable=not enabled)
