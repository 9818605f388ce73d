"""UCUM unit canonicalisation for quantity search.

The FHIR search spec lets a server canonicalise UCUM quantities so that ``5.4 mg`` matches a
search for ``5400 ug`` or ``0.0054 g``. `canonical` turns a value and a UCUM code into a value in
base units plus a canonical unit string; two quantities are comparable exactly when their
canonical unit strings are equal.

This is a small parser of our own rather than a dependency: the Python UCUM packages either
need a JVM (ucumate) or sit on pint (ucumvert), which costs ~0.75 s at start-up and folds
arbitrary units such as ``[IU]`` into plain numbers, so ``5 [IU]`` would match ``5 {cells}``.

Supported:

* the full UCUM *syntax*: ``.`` and ``/`` terms, a leading ``/``, integer exponents (``m2``,
  ``s-1``, ``10*3``, ``10^-3``), integer factors, parentheses and ``{annotations}`` (which
  count as 1, alone or after a unit). Codes are case-sensitive (``mg`` is milligram, ``Mg``
  megagram) and must be printable ASCII without spaces, as UCUM requires.
* the 20 decimal prefixes ``Y`` … ``y`` (``da`` for deka, ``u`` for micro), on metric units only.
* base units m, s, g, rad, K, C, cd; ``mol`` is kept as its own base dimension instead of
  UCUM's 6.02214076e23 (a plain number), so ``mmol/L`` is not comparable with the count
  ``10*9/L``.
* the SI derived units, litre, tonne, are, bar, mol-based chemical units (eq, osm, kat,
  U = umol/min, g% = g/dL), time units (min … a, wk, mo and their _j/_g variants), ratios
  (%, [ppth], [ppm], [ppb], [pptr], 10*, 10^), international customary length and
  avoirdupois mass, [psi], mm[Hg], cm[H2O], [in_i'Hg], atm, calories, US volumes, [drp].
* the arbitrary units [iU] (= [IU]), [arb'U], [USP'U], [CFU], [PFU], [FFU]: each is its own
  dimension, comparable only with itself.

Definitions follow ucum-essence.xml (UCUM 2.2) and are combined with exact fractions, so a
scale factor is rounded once. Non-ratio ("special") units such as Cel, [degF], [pH], B and Np
cannot be scaled multiplicatively and give None, as does every unit not listed here.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

__all__ = ["canonical"]

_MAX_CODE_LENGTH = 512
_MAX_DEPTH = 16  # nested parentheses
_MAX_BITS = 4096  # of an intermediate scale factor's numerator or denominator (~1e1233)
_VALID_CODE = re.compile(r"[!-~]+")  # printable ASCII, no space
_FACTOR = re.compile(r"[0-9]+")
_ANNOTATABLE = re.compile(r"(.*[^0-9+-])([+-]?[0-9]{1,2})?")  # a unit symbol, an exponent

_PREFIXES: dict[str, Fraction] = {
    symbol: Fraction(10) ** power
    for symbol, power in (
        ("Y", 24), ("Z", 21), ("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6),
        ("k", 3), ("h", 2), ("da", 1), ("d", -1), ("c", -2), ("m", -3), ("u", -6),
        ("n", -9), ("p", -12), ("f", -15), ("a", -18), ("z", -21), ("y", -24),
    )
}  # fmt: skip
_PREFIX_ORDER = sorted(_PREFIXES, key=len, reverse=True)  # "da" before "d"

_BASE_UNITS = ("m", "s", "g", "rad", "K", "C", "cd", "mol")  # all metric
_ARBITRARY_UNITS = {  # code: metric
    "[iU]": True, "[arb'U]": False, "[USP'U]": False, "[CFU]": False, "[PFU]": False,
    "[FFU]": False,
}  # fmt: skip

# code, metric, value, unit: `code` is `value` times `unit`, a UCUM term of earlier codes.
_DEFINITIONS: tuple[tuple[str, bool, str, str], ...] = (
    # SI derived units
    ("sr", True, "1", "rad2"),
    ("Hz", True, "1", "s-1"),
    ("N", True, "1", "kg.m/s2"),
    ("Pa", True, "1", "N/m2"),
    ("J", True, "1", "N.m"),
    ("W", True, "1", "J/s"),
    ("A", True, "1", "C/s"),
    ("V", True, "1", "J/C"),
    ("F", True, "1", "C/V"),
    ("Ohm", True, "1", "V/A"),
    ("S", True, "1", "Ohm-1"),
    ("Wb", True, "1", "V.s"),
    ("T", True, "1", "Wb/m2"),
    ("H", True, "1", "Wb/A"),
    ("lm", True, "1", "cd.sr"),
    ("lx", True, "1", "lm/m2"),
    ("Bq", True, "1", "s-1"),
    ("Gy", True, "1", "J/kg"),
    ("Sv", True, "1", "J/kg"),
    # ISO 1000 units
    ("l", True, "1", "dm3"),
    ("L", True, "1", "l"),
    ("ar", True, "100", "m2"),
    ("t", True, "1e3", "kg"),
    ("bar", True, "1e5", "Pa"),
    ("min", False, "60", "s"),
    ("h", False, "60", "min"),
    ("d", False, "24", "h"),
    ("a_t", False, "365.24219", "d"),
    ("a_j", False, "365.25", "d"),
    ("a_g", False, "365.2425", "d"),
    ("a", False, "1", "a_j"),
    ("wk", False, "7", "d"),
    ("mo_s", False, "29.53059", "d"),
    ("mo_j", False, "1", "a_j/12"),
    ("mo_g", False, "1", "a_g/12"),
    ("mo", False, "1", "mo_j"),
    # dimensionless
    ("10*", False, "10", "1"),
    ("10^", False, "10", "1"),
    ("%", False, "1", "10*-2"),
    ("[ppth]", False, "1", "10*-3"),
    ("[ppm]", False, "1", "10*-6"),
    ("[ppb]", False, "1", "10*-9"),
    ("[pptr]", False, "1", "10*-12"),
    # chemical
    ("eq", True, "1", "mol"),
    ("osm", True, "1", "mol"),
    ("kat", True, "1", "mol/s"),
    ("U", True, "1", "umol/min"),
    ("g%", True, "1", "g/dl"),
    ("[IU]", True, "1", "[iU]"),
    # international customary and avoirdupois
    ("[in_i]", False, "2.54", "cm"),
    ("[ft_i]", False, "12", "[in_i]"),
    ("[yd_i]", False, "3", "[ft_i]"),
    ("[mi_i]", False, "5280", "[ft_i]"),
    ("[cin_i]", False, "1", "[in_i]3"),
    ("[gr]", False, "64.79891", "mg"),
    ("[lb_av]", False, "7000", "[gr]"),
    ("[oz_av]", False, "1", "[lb_av]/16"),
    ("[stone_av]", False, "14", "[lb_av]"),
    # force, pressure, energy
    ("[g]", True, "9.80665", "m/s2"),
    ("gf", True, "1", "g.[g]"),
    ("[lbf_av]", False, "1", "[lb_av].[g]"),
    ("[psi]", False, "1", "[lbf_av]/[in_i]2"),
    ("m[Hg]", True, "133.3220", "kPa"),
    ("m[H2O]", True, "9.80665", "kPa"),
    ("[in_i'Hg]", False, "1", "m[Hg].[in_i]/m"),
    ("atm", False, "101325", "Pa"),
    ("cal_th", True, "4.184", "J"),
    ("cal", True, "1", "cal_th"),
    ("[Cal]", False, "1", "kcal_th"),
    # US volumes, clinical
    ("[gal_us]", False, "231", "[in_i]3"),
    ("[qt_us]", False, "1", "[gal_us]/4"),
    ("[pt_us]", False, "1", "[qt_us]/2"),
    ("[gil_us]", False, "1", "[pt_us]/4"),
    ("[foz_us]", False, "1", "[gil_us]/4"),
    ("[tbs_us]", False, "1", "[foz_us]/2"),
    ("[tsp_us]", False, "1", "[tbs_us]/3"),
    ("[cup_us]", False, "16", "[tbs_us]"),
    ("[drp]", False, "1", "ml/20"),
)

# Units on an interval or logarithmic scale: no multiplicative conversion exists.
_NON_RATIO = frozenset({
    "Cel", "[degF]", "[degRe]", "[pH]", "Np", "B", "B[SPL]", "B[V]", "B[mV]", "B[uV]",
    "B[10.nV]", "B[W]", "B[kW]", "bit_s", "[p'diop]", "%[slope]", "[hp'_X]", "[hp'_C]",
    "[hp'_M]", "[hp'_Q]", "[m/s2/Hz^(1/2)]",
})  # fmt: skip


class _Invalid(Exception):
    """The code is not a unit this module understands."""


class _Quantity:
    """An exact scale factor times a product of base dimensions."""

    __slots__ = ("dims", "factor")

    def __init__(self, factor: Fraction, dims: dict[str, int]) -> None:
        if factor.numerator.bit_length() > _MAX_BITS or factor.denominator.bit_length() > _MAX_BITS:
            raise _Invalid  # far beyond a float: keeps hostile codes like "Ym99.Ym99..." cheap
        self.factor = factor
        self.dims = dims

    def times(self, other: _Quantity, sign: int = 1) -> _Quantity:
        """``self * other`` (``sign=1``) or ``self / other`` (``sign=-1``)."""
        dims = dict(self.dims)
        for name, power in other.dims.items():
            dims[name] = dims.get(name, 0) + sign * power
        return _Quantity(self.factor * other.factor**sign, {n: p for n, p in dims.items() if p})

    def power(self, exponent: int) -> _Quantity:
        """``self ** exponent``."""
        dims = {n: p * exponent for n, p in self.dims.items()} if exponent else {}
        return _Quantity(self.factor**exponent, dims)

    def scaled(self, factor: Fraction) -> _Quantity:
        """``factor * self``."""
        return _Quantity(self.factor * factor, self.dims)

    def unit(self) -> str:
        """The canonical unit string: sorted base dimensions, ``.``-joined, e.g. ``g.m-3``."""
        parts = [n if p == 1 else f"{n}{p}" for n, p in sorted(self.dims.items())]
        return ".".join(parts) or "1"


_ONE = _Quantity(Fraction(1), {})
_ATOMS: dict[str, tuple[_Quantity, bool]] = {}  # code: (value, metric)


class _Parser:
    """Recursive descent over the UCUM grammar (the BNF of the UCUM specification)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.pos = 0
        self.depth = 0

    def parse(self) -> _Quantity:
        """mainTerm := '/' term | term."""
        if self.code.startswith("/"):
            self.pos = 1
            result = _ONE.times(self.term(), -1)
        else:
            result = self.term()
        if self.pos != len(self.code):
            raise _Invalid
        return result

    def term(self) -> _Quantity:
        """term := term '.' component | term '/' component | component."""
        result = self.component()
        code = self.code
        while self.pos < len(code) and code[self.pos] in "./":
            sign = 1 if code[self.pos] == "." else -1
            self.pos += 1
            result = result.times(self.component(), sign)
        return result

    def component(self) -> _Quantity:
        """component := annotatable annotation? | annotation | factor | '(' term ')'."""
        code = self.code
        if self.pos >= len(code):
            raise _Invalid
        if code[self.pos] == "(":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _Invalid
            self.pos += 1
            result = self.term()
            if self.pos >= len(code) or code[self.pos] != ")":
                raise _Invalid
            self.pos += 1
            self.depth -= 1
            return result
        if code[self.pos] == "{":
            self.annotation()
            return _ONE
        symbol = self.symbol()
        if _FACTOR.fullmatch(symbol):
            factor = int(symbol)
            if factor == 0:
                raise _Invalid
            return _Quantity(Fraction(factor), {})
        match = _ANNOTATABLE.fullmatch(symbol)
        if match is None:
            raise _Invalid
        result = _atom(match[1])
        if match[2] is not None:
            result = result.power(int(match[2]))
        if self.pos < len(code) and code[self.pos] == "{":
            self.annotation()
        return result

    def symbol(self) -> str:
        """A (prefixed) unit atom with its exponent, or a factor: up to an operator."""
        code, start = self.code, self.pos
        while self.pos < len(code):
            char = code[self.pos]
            if char == "[":
                end = code.find("]", self.pos + 1)
                if end < 0:
                    raise _Invalid
                self.pos = end + 1
            elif char in "./(){}]":
                break
            else:
                self.pos += 1
        if self.pos == start:
            raise _Invalid
        return code[start : self.pos]

    def annotation(self) -> None:
        """annotation := '{' printable ASCII without braces '}'; it counts as 1."""
        end = self.code.find("}", self.pos + 1)
        if end < 0 or "{" in self.code[self.pos + 1 : end]:
            raise _Invalid
        self.pos = end + 1


def _atom(symbol: str) -> _Quantity:
    """A unit atom, or a metric atom after a prefix (a whole atom wins: ``cd``, ``Pa``)."""
    if symbol in _NON_RATIO:
        raise _Invalid
    found = _ATOMS.get(symbol)
    if found is not None:
        return found[0]
    for prefix in _PREFIX_ORDER:
        if symbol.startswith(prefix):
            found = _ATOMS.get(symbol[len(prefix) :])
            if found is not None and found[1]:
                return found[0].scaled(_PREFIXES[prefix])
    raise _Invalid


def _build_atoms() -> None:
    for name in _BASE_UNITS:
        _ATOMS[name] = (_Quantity(Fraction(1), {name: 1}), True)
    for name, metric in _ARBITRARY_UNITS.items():
        _ATOMS[name] = (_Quantity(Fraction(1), {name: 1}), metric)
    for code, metric, value, unit in _DEFINITIONS:
        _ATOMS[code] = (_Parser(unit).parse().scaled(Fraction(value)), metric)


_build_atoms()


@lru_cache(maxsize=4096)
def _unit(code: str) -> tuple[float, str] | None:
    """(scale factor to base units, canonical unit string) of a UCUM code, or None."""
    if len(code) > _MAX_CODE_LENGTH or not _VALID_CODE.fullmatch(code):
        return None
    try:
        quantity = _Parser(code).parse()
        factor = float(quantity.factor)
    except (_Invalid, OverflowError):
        return None
    if factor == 0.0 or not math.isfinite(factor):  # underflow
        return None
    return factor, quantity.unit()


def canonical(value: float, code: str) -> tuple[float, str] | None:
    """``value`` in ``code`` (a UCUM unit code, case-sensitive, e.g. "mg/dL", "mmol/L",
    "kg/m2", "/min", "[in_i]", "10*9/L", "%") converted to a canonical form: (value in base
    units, canonical unit string). Two quantities are comparable exactly when their canonical
    unit strings are equal. None when the code is not understood (or is a non-ratio unit like
    Cel / [degF], which cannot be scaled multiplicatively)."""
    if type(code) is not str:
        return None
    unit = _unit(code)
    if unit is None:
        return None
    try:
        scaled = float(value) * unit[0]
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(scaled):
        return None
    return scaled, unit[1]
