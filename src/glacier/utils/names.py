"""Scene ids and output names: one rule for preprocessing and prediction.

A scene id names files (``masks/mask_{id}.npy``, ``slices/slice_{id}_img_{k}.npy``,
``{id}_classes.tif``), so it must be one safe path component:

* it matches ``^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`` (starts and ends with a letter or
  digit: no path separator, no hidden file, no trailing dot that Windows would drop);
* it holds no ``..`` and neither ``_img_`` nor ``_label_`` (they separate the id from the slice
  number in slice file names);
* it is at most :data:`MAX_ID_LENGTH` characters long.

Explicit ids (``data.scenes[i].id``) must follow the rule; names taken from file stems
(``data.scene_glob``, ``predict.py input=``) are made to follow it by :func:`sanitize_name`.
Two ids that are equal ignoring case are refused, since they name the same files on macOS and
Windows.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from glacier.errors import GlacierNameError

MAX_ID_LENGTH = 100
SCENE_ID_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
RESERVED = ("_img_", "_label_")
_DIGEST = 8


def id_problem(name: str) -> str | None:
    """Say why ``name`` is not a valid scene id.

    Args:
        name: Candidate id.

    Returns:
        A short reason (``"contains a path separator"``...), or None when the id is valid.
    """
    if not name:
        return "is empty"
    if len(name) > MAX_ID_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_ID_LENGTH})"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name:
        return "contains '..'"
    if not SCENE_ID_PATTERN.match(name):
        return (
            "must start and end with a letter or digit and hold only ASCII letters, digits, "
            "'.', '_' and '-'"
        )
    for reserved in RESERVED:
        if reserved in name:
            return f"contains '{reserved}', which slice file names use as a separator"
    return None


def _digest(text: str) -> str:
    """Short stable hash of ``text``."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]


def sanitize_name(text: str) -> str:
    """Turn any text (a file stem) into a valid scene id, deterministically.

    Accents are dropped (``Ngozumpa_é`` → ``Ngozumpa_e``), every run of other characters becomes
    ``_``, ``..`` becomes ``.``, ``_img_``/``_label_`` become ``_img-``/``_label-``, leading and
    trailing ``._-`` are stripped. A name longer than :data:`MAX_ID_LENGTH` is cut and ends with
    ``-`` and a hash of the whole text; text with no ASCII letter or digit at all (a Devanagari
    or Tibetan name) becomes ``scene-`` and that hash, so distinct such names stay distinct.
    A valid id is returned unchanged.

    Args:
        text: Any name.

    Returns:
        A valid scene id (see :func:`id_problem`).
    """
    if id_problem(text) is None:
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text)
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    previous = None
    while previous != cleaned:
        previous = cleaned
        for reserved in RESERVED:
            cleaned = cleaned.replace(reserved, reserved[:-1] + "-")
    cleaned = cleaned.strip("._-")
    if len(cleaned) > MAX_ID_LENGTH:
        cleaned = cleaned[: MAX_ID_LENGTH - _DIGEST - 1].rstrip("._-") + "-" + _digest(text)
    return cleaned or f"scene-{_digest(text)}"


def validate_scene_id(name: str, key: str) -> str:
    """Return ``name`` if it is a valid scene id, else refuse it naming the config key.

    Args:
        name: The configured id.
        key: Where it was configured, e.g. ``"data.scenes[2].id"``.

    Returns:
        ``name``.

    Raises:
        GlacierNameError: ``"data.scenes[0].id='y2000/khumbu': a scene id contains a path
            separator; use e.g. data.scenes[0].id=y2000_khumbu"``.
    """
    problem = id_problem(name)
    if problem is not None:
        raise GlacierNameError(
            f"{key}={name!r}: a scene id {problem}; use e.g. {key}={sanitize_name(name)}"
        )
    return name


def refuse_collisions(names: Sequence[str], origins: Sequence[str], what: str, fix: str) -> None:
    """Refuse names that are equal ignoring case, listing where each came from.

    Args:
        names: Ids or output names, one per origin.
        origins: What each name was made from (a file, a config key), for the message.
        what: The problem, opening the message.
        fix: What the user should do, ending the message.

    Raises:
        GlacierNameError: ``"{what}: 'scene' from a/scene.tif, b/scene.tif; {fix}"``.
    """
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        groups.setdefault(name.casefold(), []).append(index)
    clashes = [indices for indices in groups.values() if len(indices) > 1]
    if clashes:
        described = "; ".join(
            f"{names[ix[0]]!r} from " + ", ".join(origins[i] for i in ix) for ix in clashes
        )
        raise GlacierNameError(f"{what}: {described}; {fix}")


def unique_output_names(paths: Sequence[Path]) -> list[str]:
    """Output names (``{name}_classes.tif``...) for prediction inputs, one per file.

    Each name is :func:`sanitize_name` of the file stem, as scene ids from ``data.scene_glob``
    are. Inputs whose names collide (``a/scene.tif`` and ``b/scene.tif``, ``Khumbu.tif`` and
    ``khumbu.TIF``) are refused before anything is written, rather than renamed: a file's
    outputs are then always named after it, whatever other files the same call maps.

    Args:
        paths: Input rasters in prediction order.

    Returns:
        One valid, distinct (ignoring case) name per path.

    Raises:
        GlacierNameError: Listing every group of colliding inputs.
    """
    names = [sanitize_name(Path(path).stem) for path in paths]
    refuse_collisions(
        names,
        [str(path) for path in paths],
        "input= files would overwrite each other's outputs (names equal ignoring case)",
        "rename the files or map them in separate runs with different out_dir=",
    )
    return names
