"""A suite: the expectations a lens finder must meet and the data they are tested on.

A suite file is TOML that maps one-to-one onto :class:`Suite`, :class:`DataSpec`,
:class:`SetSpec` and the expectation dataclasses of :mod:`probe.gating.expectations` (no DSL): every
table's keys are the dataclass fields, unknown keys are rejected with an error naming the key and
the table, and values are validated at load.

.. code-block:: toml

    seed = 2026                  # root seed: simulated sets, perturbations, bootstraps
    alpha = 0.05                 # family-wise level of each expectation
    n_boot = 2000                # bootstrap replicates per bin

    [data]
    survey = "des-sv"            # simulator preset
    simulator = "simlens:Simulator"
    # path = "my_set.h5"         # a saved set instead (relative to the suite file; a path
    #                            # outside its directory needs path_outside_suite = true)

    [data.sets.main]
    n_lenses = 300
    n_nonlenses = 300
    nonlens_kinds = { elliptical = 1.0 }
    lenses = { theta_E = [1.0, 2.7], detectable = true }    # a 2-element array is (low, high)

    [[expectation]]
    type = "min_score"
    name = "lens score over theta_E"
    over = "theta_E"
    range = [1.0, 2.7]
    bins = 3
    min_mean = 0.6

``load_suite("default")`` loads the shipped ``probe/suites/default.toml``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from probe.adapters.simulators import DEFAULT_SIMULATOR
from probe.errors import ProbeTypeError, ProbeValueError
from probe.gating.expectations import TYPES, Expectation
from probe.gating.verdicts import min_boot
from probe.perturbers import registry
from probe.validation import names_list

__all__ = ["DataSpec", "SetSpec", "Suite", "load_suite"]


def _controls(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ProbeTypeError(f"{where} must be a table of simulator controls; got {value!r}")
    # TOML has no tuples: a two-element array is a (low, high) range, as the simulator expects.
    return {str(k): tuple(v) if isinstance(v, list | tuple) else v for k, v in value.items()}


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProbeValueError(f"{where} must be an integer >= 0; got {value!r}")
    return int(value)


@dataclass(frozen=True, kw_only=True)
class SetSpec:
    """One simulated test set (``[data.sets.<name>]``).

    Attributes
    ----------
    n_lenses, n_nonlenses : int
        How many of each are drawn (>= 0, not both 0).
    lenses : mapping
        Simulator controls of the lens draw (e.g. ``theta_E=(1.0, 2.7), detectable=True``).
    nonlenses : mapping
        Simulator controls of the non-lens draw (e.g. ``psf_scale``).
    nonlens_kinds : mapping of str to float
        Non-lens kinds and their fractions (e.g. ``{"elliptical": 1.0}``).
    """

    n_lenses: int = 300
    n_nonlenses: int = 300
    lenses: Mapping[str, Any] = field(default_factory=dict)
    nonlenses: Mapping[str, Any] = field(default_factory=dict)
    nonlens_kinds: Mapping[str, float] = field(default_factory=lambda: {"elliptical": 1.0})

    def __post_init__(self) -> None:
        n_l = _count(self.n_lenses, "n_lenses")
        n_nl = _count(self.n_nonlenses, "n_nonlenses")
        if n_l + n_nl == 0:
            raise ProbeValueError("n_lenses and n_nonlenses are both 0; a set needs images")
        object.__setattr__(self, "lenses", _controls(self.lenses, "lenses"))
        object.__setattr__(self, "nonlenses", _controls(self.nonlenses, "nonlenses"))
        kinds = self.nonlens_kinds
        if not isinstance(kinds, Mapping) or not kinds:
            raise ProbeValueError(f"nonlens_kinds must be a non-empty table; got {kinds!r}")
        fracs = {}
        for k, v in kinds.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise ProbeValueError(f"nonlens_kinds.{k} must be a fraction > 0; got {v!r}")
            fracs[str(k)] = float(v)
        object.__setattr__(self, "nonlens_kinds", fracs)

    def to_dict(self) -> dict[str, Any]:
        """The ``[data.sets.<name>]`` table (ranges as two-element arrays)."""
        return {
            "n_lenses": self.n_lenses,
            "n_nonlenses": self.n_nonlenses,
            "lenses": {k: list(v) if isinstance(v, tuple) else v for k, v in self.lenses.items()},
            "nonlenses": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.nonlenses.items()
            },
            "nonlens_kinds": dict(self.nonlens_kinds),
        }


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    """Where the test images come from (``[data]``).

    Attributes
    ----------
    survey : str
        Simulator preset (``simlens``: "des-sv" is the reference finders' training PSF).
    simulator : str
        ``"module:callable"`` building the simulator from ``survey=...``; any object with
        :class:`probe.SimulatorProtocol`'s methods.
    sets : mapping of str to SetSpec
        The simulated sets, by name; expectations pick one with ``set``.
    path : str or None
        A saved HDF5 set (images, truth table with ``label``) used by every expectation instead
        of simulating.
    """

    survey: str = "des-sv"
    simulator: str = DEFAULT_SIMULATOR
    sets: Mapping[str, SetSpec] = field(default_factory=lambda: {"main": SetSpec()})
    path: str | None = None

    def __post_init__(self) -> None:
        for name in ("survey", "simulator"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ProbeValueError(f"data.{name} must be a non-empty string; got {value!r}")
        if ":" not in self.simulator:
            raise ProbeValueError(
                f"data.simulator must be 'module:callable'; got {self.simulator!r}"
            )
        if not isinstance(self.sets, Mapping) or not self.sets:
            raise ProbeValueError("data.sets must hold at least one set")
        for name, spec in self.sets.items():
            if not isinstance(spec, SetSpec):
                raise ProbeTypeError(f"data.sets.{name} must be a SetSpec; got {spec!r}")
        if self.path is not None and not isinstance(self.path, str | os.PathLike):
            raise ProbeTypeError(f"data.path must be a path; got {self.path!r}")
        if self.path is not None:
            object.__setattr__(self, "path", os.fspath(self.path))

    def to_dict(self) -> dict[str, Any]:
        """The ``[data]`` table."""
        out: dict[str, Any] = {"survey": self.survey, "simulator": self.simulator}
        if self.path is not None:
            out["path"] = self.path
        out["sets"] = {name: spec.to_dict() for name, spec in self.sets.items()}
        return out


def _bins_tested(e: Expectation) -> int:
    """How many bins ``e`` tests (the Holm family size)."""
    k = len(e.values) if e.mode == "sweep" else e.bins
    # Direction tests neighbouring pairs; a sweep's invariance leaves out its reference value.
    pairs = e.type == "direction" or (e.type == "invariance" and e.mode == "sweep")
    return k - 1 if pairs else k


@dataclass(frozen=True, kw_only=True)
class Suite:
    """Expectations plus the data and settings they are tested with.

    Attributes
    ----------
    expectations : tuple of Expectation
        With distinct names.
    data : DataSpec
        Simulated sets (or a saved one).
    seed : int
        Root seed (>= 0) of the simulated sets, the perturbations and the bootstraps.
    alpha : float
        Family-wise level of each expectation's test, in (0, 0.5).
    n_boot : int
        Bootstrap replicates per bin, at least ``bins / alpha`` for every expectation.
    description : str
        Free text, shown in reports.
    """

    expectations: tuple[Expectation, ...]
    data: DataSpec = field(default_factory=DataSpec)
    seed: int = 2026
    alpha: float = 0.05
    n_boot: int = 2000
    description: str = ""

    def __post_init__(self) -> None:
        exps = tuple(self.expectations)
        object.__setattr__(self, "expectations", exps)
        if not exps:
            raise ProbeValueError("a suite needs at least one expectation")
        for i, e in enumerate(exps):
            if type(e) not in TYPES.values():
                raise ProbeTypeError(f"expectations[{i}] is not an expectation; got {e!r}")
        names = [e.name for e in exps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ProbeValueError(f"expectation names must be distinct; repeated: {dup}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ProbeValueError(f"seed must be an integer >= 0; got {self.seed!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float):
            raise ProbeTypeError(f"alpha must be a number; got {self.alpha!r}")
        if not 0 < self.alpha < 0.5:
            raise ProbeValueError(f"alpha must be in (0, 0.5); got {self.alpha!r}")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int):
            raise ProbeTypeError(f"n_boot must be an integer; got {self.n_boot!r}")
        if not 100 <= self.n_boot <= 1_000_000:
            raise ProbeValueError(f"n_boot must be in [100, 1000000]; got {self.n_boot}")
        known = registry()
        for e in exps:
            if e.mode == "sweep" and e.over not in known:
                raise ProbeValueError(
                    f"{e.who}: over={e.over!r} with values must be a perturber; known: "
                    f"{names_list(sorted(known))}"
                )
            if self.data.path is None and e.set not in self.data.sets:
                raise ProbeValueError(
                    f"{e.who}: set={e.set!r} is not among data.sets "
                    f"({names_list(sorted(self.data.sets))})"
                )
            m = _bins_tested(e)
            if e.type != "completeness" and self.n_boot < min_boot(m, self.alpha):
                raise ProbeValueError(
                    f"{e.who}: n_boot={self.n_boot} is too small for {m} bins at alpha="
                    f"{self.alpha:g} (the smallest p-value, 1/(n_boot+1), must reach alpha/bins); "
                    f"use n_boot >= {min_boot(m, self.alpha)}"
                )
            if self.data.path is None:
                spec = self.data.sets[e.set]
                need_lens = e.group in ("lens",) or e.type == "completeness"
                if need_lens and spec.n_lenses == 0:
                    raise ProbeValueError(f"{e.who}: set {e.set!r} has n_lenses = 0")
                if e.group == "nonlens" and spec.n_nonlenses == 0:
                    raise ProbeValueError(f"{e.who}: set {e.set!r} has n_nonlenses = 0")

    @property
    def needs_baseline(self) -> bool:
        """Whether any expectation compares with a baseline model (no_regression)."""
        return any(e.type == "no_regression" for e in self.expectations)

    # -- one-to-one mapping onto TOML ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The suite as the tables of its TOML file (``from_dict(to_dict())`` round-trips)."""
        out: dict[str, Any] = {"seed": self.seed, "alpha": self.alpha, "n_boot": self.n_boot}
        if self.description:
            out["description"] = self.description
        out["data"] = self.data.to_dict()
        out["expectation"] = [e.to_dict() for e in self.expectations]
        return out

    @classmethod
    def from_dict(
        cls, doc: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None
    ) -> Suite:
        """Build and validate a suite from the tables of a suite file.

        ``base_dir`` resolves a relative ``data.path``. Errors name the offending key and table
        (e.g. "[[expectation]] #2 ('lens score'): unknown key 'min_men'").
        """
        if not isinstance(doc, Mapping):
            raise ProbeTypeError(f"a suite must be a table; got {type(doc).__name__}")
        top = {f.name for f in dataclasses.fields(cls)} - {"expectations", "data"}
        _reject_unknown(doc, top | {"data", "expectation"}, "the suite's top level")
        data = _data_from(doc.get("data", {}), base_dir)
        raw = doc.get("expectation")
        if not isinstance(raw, list) or not raw:
            raise ProbeValueError("a suite needs at least one [[expectation]] table")
        exps = [_expectation_from(t, i + 1) for i, t in enumerate(raw)]
        kwargs = {k: doc[k] for k in top if k in doc}
        return cls(expectations=tuple(exps), data=data, **kwargs)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Suite:
        """Read and validate a suite file (see the module docstring for its layout)."""
        p = Path(path)
        if not p.is_file():
            raise ProbeValueError(f"suite file {os.fspath(path)!r} not found")
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ProbeValueError(
                f"suite file {os.fspath(path)!r} is not valid TOML: {err}"
            ) from None
        try:
            return cls.from_dict(doc, base_dir=p.parent)
        except (ProbeValueError, ProbeTypeError) as err:
            raise type(err)(f"suite file {os.fspath(path)!r}: {err}") from None


#: The ``[data]`` key a suite file sets to read a ``path`` outside its own directory.
OUTSIDE_KEY = "path_outside_suite"


def _reject_unknown(table: Mapping[str, Any], valid: set[str], where: str) -> None:
    unknown = sorted(set(table) - valid)
    if unknown:
        raise ProbeValueError(
            f"{where}: unknown key {unknown[0]!r}; valid keys: {names_list(sorted(valid))}"
        )


def _data_from(table: Any, base_dir: str | os.PathLike[str] | None) -> DataSpec:
    if not isinstance(table, Mapping):
        raise ProbeTypeError(f"[data] must be a table; got {table!r}")
    valid = {f.name for f in dataclasses.fields(DataSpec)} | {OUTSIDE_KEY}
    _reject_unknown(table, valid, "[data]")
    kwargs = {k: v for k, v in table.items() if k not in ("sets", OUTSIDE_KEY)}
    outside = table.get(OUTSIDE_KEY, False)
    if not isinstance(outside, bool):
        raise ProbeTypeError(f"[data] {OUTSIDE_KEY} must be true or false; got {outside!r}")
    if "path" in kwargs and base_dir is not None:
        if not isinstance(kwargs["path"], str):
            raise ProbeTypeError(f"[data] path must be a string; got {kwargs['path']!r}")
        kwargs["path"] = os.fspath(Path(base_dir) / Path(kwargs["path"]).expanduser())
        # A suite from elsewhere must not read files anywhere on this machine unannounced.
        inside = Path(kwargs["path"]).resolve().is_relative_to(Path(base_dir).resolve())
        if not inside and not outside:
            raise ProbeValueError(
                f"[data] path {table['path']!r} points outside the suite's directory "
                f"{os.fspath(base_dir)!r}; set {OUTSIDE_KEY} = true in [data] to allow it, or "
                "pass the set with --data"
            )
    if "sets" in table:
        sets = table["sets"]
        if not isinstance(sets, Mapping):
            raise ProbeTypeError(f"[data.sets] must be a table of sets; got {sets!r}")
        valid = {f.name for f in dataclasses.fields(SetSpec)}
        built = {}
        for name, spec in sets.items():
            where = f"[data.sets.{name}]"
            if not isinstance(spec, Mapping):
                raise ProbeTypeError(f"{where} must be a table; got {spec!r}")
            _reject_unknown(spec, valid, where)
            try:
                built[str(name)] = SetSpec(**spec)
            except (ProbeValueError, ProbeTypeError) as err:
                raise type(err)(f"{where}: {err}") from None
        kwargs["sets"] = built
    try:
        return DataSpec(**kwargs)
    except TypeError as err:  # a non-string key cannot reach here from TOML; keep the message
        raise ProbeTypeError(f"[data]: {err}") from None


def _expectation_from(table: Any, number: int) -> Expectation:
    where = f"[[expectation]] #{number}"
    if not isinstance(table, Mapping):
        raise ProbeTypeError(f"{where} must be a table; got {table!r}")
    kind = table.get("type")
    if kind not in TYPES:
        raise ProbeValueError(
            f"{where}: key 'type' must be one of {names_list(list(TYPES))}; got {kind!r}"
        )
    cls = TYPES[kind]
    if "name" in table:
        where = f"{where} ({table['name']!r})"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _reject_unknown(table, set(fields) | {"type"}, where)
    missing = [
        n
        for n, f in fields.items()
        if n not in table
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ProbeValueError(f"{where}: missing key {missing[0]!r}")
    kwargs = {k: v for k, v in table.items() if k != "type"}
    try:
        return cls(**kwargs)  # type: ignore[return-value]
    except (ProbeValueError, ProbeTypeError) as err:
        raise type(err)(f"{where}: {err}") from None


def load_suite(suite: str | os.PathLike[str] | Suite) -> Suite:
    """A suite from a file, ``"default"`` (the shipped suite), or a :class:`Suite` as is."""
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, str) and suite == "default":
        ref = resources.files("probe").joinpath("suites", "default.toml")
        with resources.as_file(ref) as path:
            return Suite.from_toml(path)
    if not isinstance(suite, str | os.PathLike):
        raise ProbeTypeError(f"suite must be a Suite, a path or 'default'; got {suite!r}")
    return Suite.from_toml(suite)
