"""The HDF5 file format of simlens sets: its constants and the encoding of truth columns.

A :class:`simlens.io.dataset.Dataset` holds ``images`` (float32, shape ``(n, H, W, C)``,
channels-last, counts at the survey zero point), ``truth`` (a pandas DataFrame, one row per
image, the full description of each image) and ``meta`` (a JSON-serialisable provenance dict).

File format (HDF5, ``format_version`` 1)
----------------------------------------
Root attributes: ``format`` = ``"simlens-dataset"``, ``format_version`` (int), ``n``, ``npix``,
``bands`` (JSON list), ``meta`` (JSON: the dataset's provenance), ``writer`` (JSON: provenance of
the code that wrote the file), ``created_utc``, ``compression``.

- ``/images``: float32 ``(n, H, W, C)``, one HDF5 chunk per image (random access to any image
  reads one chunk), optionally gzip- or lzf-compressed with the shuffle filter.
- ``/truth/<column>``: one 1-D dataset per truth column, in the table's own dtype (bool, signed
  or unsigned integers, floats); string columns as variable-length UTF-8 with a missing-value
  mask in ``/truth_na/<column>``. Each carries attribute ``pandas_dtype``; ``/truth`` carries
  ``columns`` (JSON list, the column order). No pandas-specific encoding is used, so any HDF5
  reader (h5py, ``h5dump``, Julia, C) can read a set.
- ``/truth_table``: the same truth as one compound (record) table, written when the set is
  closed, so table tools read it without simlens: ``astropy.table.Table.read(path,
  path="truth_table")`` or ``pandas.DataFrame(h5py.File(path)["truth_table"][()])``. Strings are
  fixed-width UTF-8 bytes (a missing string is empty; ``/truth_na`` keeps the mask). Optional:
  sets written before it have only ``/truth``. ``simlens truth SET --format parquet|fits|ecsv``
  exports the table to a file.

Files are written to a temporary name in the target directory and renamed into place only when
complete (:func:`simlens.io.atomic.atomic_path`): a failed or interrupted write leaves no file
and never damages an existing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from simlens.errors import SimlensValueError

#: Value of the root attribute ``format`` in every simlens set.
FORMAT_NAME = "simlens-dataset"
#: Version of the layout described in the module docstring; readers refuse newer versions.
FORMAT_VERSION = 1

#: Bands assumed for 4-channel images when neither ``bands`` nor ``meta["bands"]`` says otherwise.
DEFAULT_BANDS = ("g", "r", "i", "z")

Compression = Literal["gzip", "lzf"] | None
COMPRESSIONS = (None, "gzip", "lzf")
TRUTH_CHUNK = 4096  # rows per HDF5 chunk of a truth column


# --------------------------------------------------------------------------- truth columns
def column_kind(name: str, dtype: Any, values: pd.Series) -> str:
    """``"numeric"`` or ``"string"``; raises for dtypes the file format does not store."""
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return "numeric"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        present = values.dropna()
        if all(isinstance(v, str) for v in present):
            return "string"
    raise SimlensValueError(
        f"truth[{name!r}]: dtype {dtype} cannot be saved; use bool, integer, float or str columns"
    )


def check_truth(truth: pd.DataFrame) -> None:
    if not isinstance(truth, pd.DataFrame):
        raise SimlensValueError(f"truth: expected a pandas DataFrame, got {type(truth).__name__}")
    names = list(truth.columns)
    if len(set(names)) != len(names):
        dup = sorted({str(c) for c in names if names.count(c) > 1})
        raise SimlensValueError(f"truth: column names must be unique, repeated: {dup}")
    for name in names:
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise SimlensValueError(
                f"truth: column name {name!r} must be a non-empty string without '/'"
            )
        column_kind(name, truth[name].dtype, truth[name])


def truth_signature(truth: pd.DataFrame) -> list[tuple[str, str]]:
    return [(str(c), str(t)) for c, t in truth.dtypes.items()]


def series_from_file(values: np.ndarray, dtype_name: str, missing: np.ndarray | None) -> Any:
    if missing is None:  # numeric: the HDF5 dtype is the pandas dtype
        return values
    if dtype_name == "object":
        out = values.astype(object)
        out[missing] = None
        # A Series pins the dtype: pandas >= 3 would otherwise infer "str" for these values.
        return pd.Series(out, dtype=object, copy=False)
    # Columns with missing values are pandas extension dtypes ("string", "Int64", "boolean").
    dtype: Any = pd.api.types.pandas_dtype(dtype_name)
    data: Any = pd.array(values, dtype=dtype)
    if missing.any():
        data[missing] = dtype.na_value
    return data


def resolve_bands(bands: Sequence[str] | None, meta: dict[str, Any], nchan: int) -> tuple[str, ...]:
    """The band of each of ``nchan`` channels: ``bands``, else ``meta["bands"]``, else griz."""
    if bands is None:
        bands = meta.get("bands")
    if bands is None:
        if nchan != len(DEFAULT_BANDS):
            raise SimlensValueError(
                f"bands: required for {nchan}-channel images (default {DEFAULT_BANDS} is for 4)"
            )
        bands = DEFAULT_BANDS
    if isinstance(bands, str) or not all(isinstance(b, str) and b for b in bands):
        raise SimlensValueError(f"bands: expected a sequence of band names, got {bands!r}")
    out = tuple(bands)
    if len(out) != nchan or len(set(out)) != nchan:
        raise SimlensValueError(
            f"bands: expected {nchan} distinct names (one per channel), got {out}"
        )
    return out


#: Name of the compound copy of the truth table (see the module docstring).
TRUTH_TABLE = "truth_table"


def truth_records(truth: pd.DataFrame) -> np.ndarray:
    """The truth table as a numpy record array that any HDF5 or FITS tool reads: numbers and
    booleans in their own dtype, strings as fixed-width UTF-8 bytes (missing: empty)."""
    fields: list[tuple[str, Any]] = []
    columns: dict[str, np.ndarray] = {}
    for name in truth.columns:
        series = truth[name]
        dtype = series.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            values = series.to_numpy()
        elif pd.api.types.is_bool_dtype(dtype):
            values = series.fillna(False).to_numpy(dtype=bool)
        elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            encoded = [b"" if pd.isna(v) else str(v).encode("utf-8") for v in series]
            width = max([1, *(len(b) for b in encoded)])
            values = np.array(encoded, dtype=f"S{width}")
        columns[str(name)] = values
        fields.append((str(name), values.dtype))
    records = np.empty(len(truth), dtype=fields)
    for name, values in columns.items():
        records[name] = values
    return records
