"""Years from the date column of outline files, parsed value by value.

Glacier inventories store dates in many ways, and one file may mix them (RGI ``BgnDate`` as
``20001030``, ``20039999`` when month and day are unknown, ``-9999999`` when the date is;
ICIMOD ``Year`` as ``2000``; hand-edited files with ``2000-10-30``). Guessing one format for a
whole column from its first value silently loses the other rows, so every value is parsed on
its own with formats that cannot be confused with each other (the year always comes first):

* a number: a year (``2000``, ``2000.0``, a decimal year ``2000.83``) or ``YYYYMMDD``
  (``20001030``; month and day ``00`` or ``99`` mean unknown, as in RGI);
* text: the same, or ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM[:SS]`` (any time zone), ``YYYY/MM/DD``;
* a date or timestamp object (a GeoPackage DATE field);
* the configured ``format`` (``strptime``), tried first for text.

Missing values (null, empty text, 0, negative numbers such as RGI's ``-9999999``) are *missing*;
anything else that matches no format is *unparseable*. Years outside
:data:`FIRST_YEAR`–:data:`LAST_YEAR` are unparseable too, which catches day-first dates
(``30102000`` would be year 3010).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from glacier.errors import GlacierFileError

ACCEPTED_DATES = "a year, YYYYMMDD, YYYY-MM-DD[THH:MM:SS] or YYYY/MM/DD"
FIRST_YEAR = 1800
LAST_YEAR = 2200
MISSING = -1.0  # parse_year result for a missing value; NaN means unparseable
_ISO = re.compile(
    r"(\d{4})([-/])(\d{2})\2(\d{2})"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_NAN_KEY = object()
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class ParsedYears:
    """Years of a date column and what could not be read.

    Attributes:
        years: Year per row as float (NaN where missing or unparseable), same index as input.
        missing: Row mask of missing values.
        unparseable: Row mask of values that are present but match no accepted format.
        examples: Up to three distinct unparseable values, as text, for messages.
    """

    years: pd.Series
    missing: pd.Series
    unparseable: pd.Series
    examples: tuple[str, ...]


def _plausible(year: int) -> float:
    """``year`` as float when within the accepted range, else NaN."""
    return float(year) if FIRST_YEAR <= year <= LAST_YEAR else math.nan


def _from_number(number: float) -> float:
    """Year from a number: a (decimal) year or YYYYMMDD; MISSING for 0 and negatives."""
    if not math.isfinite(number):
        return MISSING if math.isnan(number) else math.nan
    if number <= 0:
        return MISSING
    if number < 10_000:
        return _plausible(math.floor(number))
    if not number.is_integer() or not 10_000_000 <= number <= 99_999_999:
        return math.nan
    value = int(number)
    year, month, day = value // 10_000, value // 100 % 100, value % 100
    if not (month <= 12 or month == 99) or not (day <= 31 or day == 99):
        return math.nan
    if 1 <= month <= 12 and 1 <= day <= 31 and not _valid_date(year, month, day):
        return math.nan
    return _plausible(year)


def _valid_date(year: int, month: int, day: int) -> bool:
    """Whether the calendar has this day."""
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _from_text(text: str, date_format: str | None) -> float:
    """Year from a string (see the module docstring)."""
    text = text.strip()
    if not text or text.lower() in ("nan", "nat", "none", "null"):
        return MISSING
    if date_format is not None:
        try:
            return _plausible(dt.datetime.strptime(text, date_format).year)
        except ValueError:
            pass
    if _NUMBER.fullmatch(text):
        if "." not in text and len(text.lstrip("+-")) not in (4, 8) and float(text) > 0:
            return math.nan  # "200" or "2000103": a digit too few or too many
        return _from_number(float(text))
    match = _ISO.fullmatch(text)
    if match is None:
        return math.nan
    year, month, day = (int(match.group(i)) for i in (1, 3, 4))
    return _plausible(year) if _valid_date(year, month, day) else math.nan


def parse_year(value: object, date_format: str | None = None) -> float:
    """Parse one date value into a year.

    Args:
        value: A number, string, date or timestamp (or None/NaN).
        date_format: Optional ``strptime`` format tried first for strings.

    Returns:
        The year; :data:`MISSING` (-1.0) for a missing value; NaN when unparseable.
    """
    if value is None or value is pd.NaT or value is pd.NA:
        return MISSING
    if isinstance(value, dt.date):  # datetime and pandas Timestamp too
        return _plausible(value.year)
    if isinstance(value, np.datetime64):
        return MISSING if np.isnat(value) else _plausible(pd.Timestamp(value).year)
    if isinstance(value, bool | np.bool_):
        return math.nan
    if isinstance(value, int | float | np.integer | np.floating):
        return _from_number(float(value))
    if isinstance(value, str):
        return _from_text(value, date_format)
    return math.nan


def parse_years(values: pd.Series, date_format: str | None = None) -> ParsedYears:
    """Parse every value of a date column on its own (each distinct value once).

    Args:
        values: The column, of any dtype.
        date_format: Optional ``strptime`` format tried first for strings.

    Returns:
        Years per row and the masks of missing and unparseable values.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return _datetime_years(values)
    objects = values.astype(object)
    parsed = {}
    for value in pd.unique(objects.to_numpy()):
        parsed[_key(value)] = parse_year(value, date_format)
    raw = np.array([parsed[_key(v)] for v in objects.to_numpy()], dtype=np.float64)
    missing = pd.Series(raw == MISSING, index=values.index)
    unparseable = pd.Series(np.isnan(raw), index=values.index)
    years = pd.Series(np.where(raw == MISSING, np.nan, raw), index=values.index)
    bad = objects.to_numpy()[np.isnan(raw)]
    examples = tuple(dict.fromkeys(str(v) for v in bad))[:3]
    return ParsedYears(years, missing, unparseable, examples)


def _datetime_years(values: pd.Series) -> ParsedYears:
    """Years of a datetime column (NaT is missing)."""
    years = pd.Series(values.dt.year, index=values.index, dtype="float64")
    none = pd.Series(False, index=values.index)
    return ParsedYears(years, years.isna(), none, ())


def _key(value: object) -> object:
    """A hashable key that treats every NaN alike."""
    if isinstance(value, float) and math.isnan(value):
        return _NAN_KEY
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def refuse_unparseable(parsed: ParsedYears, path: object, column: str) -> None:
    """Refuse date values that are present but unreadable, naming the file and examples.

    Args:
        parsed: The parsed column.
        path: The outline file, for the message.
        column: The date column, for the message.

    Raises:
        GlacierFileError: If any value is unparseable.
    """
    count = int(parsed.unparseable.sum())
    if count:
        raise GlacierFileError(
            f"{path}: {count} of {len(parsed.years)} values of date column '{column}' "
            f"(data.date_filter.column) match no accepted date format, e.g. "
            f"{list(parsed.examples)}; accepted: {ACCEPTED_DATES}; set "
            "data.date_filter.format (strptime, e.g. '%d.%m.%Y') or fix those values"
        )
