"""Reading a processed dataset's ``dataset.json``: its contract and its other keys."""

from __future__ import annotations

import json
from pathlib import Path

from glacier.data.contract.generations import check_published
from glacier.data.contract.info import DatasetInfo
from glacier.data.contract.layout import DatasetLayout
from glacier.data.contract.schema import REBUILD_HINT, DatasetContract
from glacier.errors import GlacierInputError


def load_contract(processed_dir: Path) -> tuple[DatasetContract, DatasetInfo]:
    """Read ``dataset.json``: the contract and the rest of its keys (counts, storage...).

    A dataset caught half-written (a run killed while publishing it, or scene arrays of another
    generation than the index names) is refused: see
    :func:`glacier.data.contract.generations.check_published`.

    Raises:
        GlacierInputError: If it is missing, of another format, or half-written.
    """
    path = DatasetLayout(Path(processed_dir)).info
    if not path.is_file():
        raise GlacierInputError(
            f"no processed dataset at {processed_dir} (dataset.json missing); run "
            "`glacier preprocess` with the same data config first"
        )
    info = json.loads(path.read_text())
    check_published(Path(processed_dir), info)
    contract = DatasetContract.from_dict(info, where=str(path))
    if contract.stats is None:
        raise GlacierInputError(f"{path} has no normalization statistics; {REBUILD_HINT}")
    return contract, DatasetInfo.from_dict(info)
