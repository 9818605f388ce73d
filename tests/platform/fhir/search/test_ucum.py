"""UCUM canonicalisation for quantity search: conversions, case, annotations, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samhandling.platform.fhir.search.ucum import canonical


def same(a: tuple[float, str], b: tuple[float, str] | None) -> bool:
    """Whether two canonical forms are the same quantity (float-tolerant)."""
    assert b is not None
    return a[1] == b[1] and a[0] == pytest.approx(b[0], rel=1e-12)


def c(value: float, code: str) -> tuple[float, str]:
    """`canonical`, asserting that the code is understood."""
    result = canonical(value, code)
    assert result is not None, code
    return result


@pytest.mark.parametrize(
    ("left", "right"),
    [
        # mass
        ((5.4, "mg"), (5400, "ug")),
        ((5.4, "mg"), (0.0054, "g")),
        ((5.4, "mg"), (5.4e-6, "kg")),
        ((1, "kg"), (1000, "g")),
        # concentrations
        ((1, "mg/dL"), (0.01, "g/L")),
        ((100, "mg/dL"), (1, "g/L")),
        ((1, "mmol/L"), (1, "umol/mL")),
        ((1, "g%"), (1, "g/dL")),
        ((1, "mg%"), (1, "mg/dL")),
        ((1, "[IU]/L"), (1, "m[iU]/mL")),
        ((1, "U/L"), (1, "umol/min/L")),
        ((60, "U"), (1, "ukat")),
        # volume
        ((1, "L"), (1000, "mL")),
        ((1, "L"), (10, "dL")),
        ((1, "l"), (1, "L")),
        ((1, "dm3"), (1, "L")),
        ((1, "[foz_us]"), (29.5735295625, "mL")),
        # time and rates
        ((1, "min"), (60, "s")),
        ((1, "h"), (60, "min")),
        ((1, "h"), (3600, "s")),
        ((1, "d"), (24, "h")),
        ((1, "wk"), (7, "d")),
        ((12, "mo"), (1, "a")),
        ((1, "a"), (365.25, "d")),
        ((60, "/min"), (1, "Hz")),
        ((60, "/min"), (1, "s-1")),
        ((1, "/min"), (1, "min-1")),
        ((1, "mL/min"), (60, "mL/h")),
        # length, area, body mass index
        ((1, "[in_i]"), (2.54, "cm")),
        ((1, "[ft_i]"), (30.48, "cm")),
        ((1, "kg/m2"), (10, "g/dm2")),
        ((1, "m2"), (10000, "cm2")),
        ((1, "/m2"), (1e-4, "/cm2")),
        # mass, customary
        ((1, "[lb_av]"), (0.45359237, "kg")),
        ((16, "[oz_av]"), (1, "[lb_av]")),
        ((1, "[stone_av]"), (14, "[lb_av]")),
        # pressure and energy
        ((1, "mm[Hg]"), (133.322, "Pa")),
        ((1, "cm[H2O]"), (98.0665, "Pa")),
        ((1, "[psi]"), (6894.757293168361, "Pa")),
        ((1, "bar"), (100, "kPa")),
        ((1, "kcal"), (4.184, "kJ")),
        ((1, "[Cal]"), (1, "kcal")),
        ((1, "J"), (1, "kg.m2/s2")),
        ((1, "N"), (1, "kg.m.s-2")),
        # dimensionless
        ((50, "%"), (0.5, "1")),
        ((1, "%"), (10, "[ppth]")),
        ((1, "[ppm]"), (1000, "[ppb]")),
        ((1, "10*3"), (1000, "1")),
        ((1, "10^-3"), (0.001, "1")),
        # counts per volume
        ((5, "10*9/L"), (5000, "/uL")),
        ((5, "10*9/L"), (5, "10^9/L")),
        ((5, "10*9/L"), (5, "10*3/uL")),
        ((5, "10*9/L"), (5000, "{cells}/uL")),
        ((5, "10*9/L"), (5, "10*9/L{cells}")),
        # annotations count as 1
        ((90, "mL/min/{1.73_m2}"), (90, "mL/min")),
        ((7, "{score}"), (7, "1")),
        ((3, "{beats}/min"), (3, "/min")),
        ((2, "mg{total}"), (2, "mg")),
        # syntax: parentheses, leading slash, explicit signs, factors
        ((1, "mg/(kg.d)"), (1, "mg/kg/d")),
        ((1, "mL/(24.h)"), (1, "mL/d")),
        ((1, "(mg/dL)"), (1, "mg/dL")),
        ((1, "/(m.s)"), (1, "m-1.s-1")),
        ((1, "m+2"), (1, "m2")),
        ((1, "mL/100"), (1, "10*-2.mL")),
        ((1, "mm[Hg]"), (1, "m[Hg]/1000")),
    ],
)
def test_equivalent(left: tuple[float, str], right: tuple[float, str]) -> None:
    assert same(c(*left), c(*right))


@pytest.mark.parametrize(
    ("code", "factor", "unit"),
    [
        ("g", 1, "g"),
        ("mg/dL", 10, "g.m-3"),
        ("kg/m2", 1000, "g.m-2"),
        ("mmol/L", 1, "m-3.mol"),
        ("/min", 1 / 60, "s-1"),
        ("Hz", 1, "s-1"),
        ("10*9/L", 1e12, "m-3"),
        ("%", 0.01, "1"),
        ("1", 1, "1"),
        ("[iU]/L", 1000, "[iU].m-3"),
        ("mm[Hg]", 133322, "g.m-1.s-2"),
        ("m0", 1, "1"),
    ],
)
def test_canonical_form(code: str, factor: float, unit: str) -> None:
    value, canonical_unit = c(1, code)
    assert canonical_unit == unit
    assert value == pytest.approx(factor, rel=1e-12)


def test_value_is_scaled_linearly() -> None:
    assert c(5.4, "mg") == (pytest.approx(0.0054), "g")
    assert c(-2, "kg") == (pytest.approx(-2000), "g")
    assert c(0, "mg/dL") == (0, "g.m-3")
    assert c(3, "mg") == c(3.0, "mg")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("mg", "mL"),  # mass vs volume
        ("mmol/L", "mg/dL"),  # mol is its own dimension
        ("mmol/L", "10*9/L"),
        ("[IU]/L", "/L"),  # arbitrary units are comparable only with themselves
        ("[IU]", "[arb'U]"),
        ("[CFU]/mL", "/mL"),
        ("U/L", "[IU]/L"),
        ("Hz", "rad/s"),  # rad is a base dimension
        ("kg/m2", "kg.m2"),
        ("%", "mg"),
    ],
)
def test_not_comparable(left: str, right: str) -> None:
    assert c(1, left)[1] != c(1, right)[1]


def test_case_sensitivity() -> None:
    assert c(1, "mg") == (pytest.approx(1e-3), "g")
    assert c(1, "Mg") == (pytest.approx(1e6), "g")
    assert c(1, "Pa")[1] != c(1, "pA")[1]  # pascal vs picoampere
    assert c(1, "[IU]") == c(1, "[iU]")
    assert c(1, "L") == c(1, "l")
    assert canonical(1, "MG") is None
    assert canonical(1, "KG") is None
    assert canonical(1, "[in_I]") is None


def test_whole_atoms_win_over_prefixes() -> None:
    assert c(1, "cd")[1] == "cd"  # candela, not centi-day
    assert c(1, "min") == (60, "s")  # minute, not milli-inch
    assert c(1, "mo")[1] == "s"  # month
    assert c(1, "dam") == (pytest.approx(10), "m")  # deka-metre
    assert c(1, "mmol") == (pytest.approx(1e-3), "mol")


@pytest.mark.parametrize(
    "code",
    [
        "ka",  # annum is not metric: no prefixes
        "kh",
        "k%",
        "m[in_i]",
        "k[lb_av]",
        "m10*",
        "mCel",
    ],
)
def test_prefix_on_non_metric_unit(code: str) -> None:
    assert canonical(1, code) is None


@pytest.mark.parametrize(
    "code",
    ["Cel", "[degF]", "[degRe]", "[pH]", "B", "dB", "Np", "B[SPL]", "B[10.nV]", "bit_s"],
)
def test_non_ratio_units(code: str) -> None:
    assert canonical(37, code) is None


@pytest.mark.parametrize(
    "code",
    [
        "",
        "foo",
        "mg//L",
        "mg/",
        "/",
        ".",
        "mg.",
        ".mg",
        "((",
        "()",
        "(mg",
        "mg)",
        "mg]",
        "[in_i",
        "{",
        "}",
        "{a{b}}",
        "mg{",
        "(mg){x}",
        "(mg)2",
        "0",
        "0/L",
        "m-",
        "m2s",
        "2m",
        "10{x}",
        "m 2",
        " mg",
        "mg ",
        "µg",
        "mL/min/{1.73 m2}",
        "mg/dL\n",
        "m999",
        "m" * 1000,
        "(" * 40 + "m" + ")" * 40,
        "(" * 600,
        "9" * 500,
        "Ym99." * 100 + "m",
        "ym-99." * 100 + "m",
    ],
)
def test_malformed_or_unknown(code: str) -> None:
    assert canonical(1, code) is None


def test_non_finite_and_odd_arguments() -> None:
    assert canonical(float("inf"), "mg") is None
    assert canonical(float("nan"), "mg") is None
    assert canonical(1e308, "Yg") is None  # overflows
    assert canonical(1, None) is None  # type: ignore[arg-type]
    assert canonical(1, ["mg"]) is None  # type: ignore[arg-type]
    assert canonical("x", "mg") is None  # type: ignore[arg-type]
    assert canonical(None, "mg") is None  # type: ignore[arg-type]


def test_extreme_but_valid_scales() -> None:
    assert c(1, "Ym10.ym10") == (1, "m20")  # 1e240 * 1e-240, exact before rounding
    assert canonical(1, "Ym99.ym99") is None  # intermediates past ~1e1233 are refused
    assert canonical(1, "Ym99") is None  # the scale factor overflows a float
    assert canonical(1, "ym99") is None  # and here underflows to 0
    assert c(1, "9" * 400 + "/" + "9" * 100) == (pytest.approx(1e300), "1")


UCUM_ALPHABET = st.sampled_from(list("mgLsdkuµ%/.()[]{}*^+-_'0123456789 aA\n"))
UCUM_PIECES = st.sampled_from(
    ["mg", "dL", "10*", "[in_i]", "mm[Hg]", "{x}", "(", ")", "/", ".", "2", "-1", "[", "]"]
)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300), st.floats(allow_nan=True, allow_infinity=True))
def test_never_raises_on_arbitrary_text(code: str, value: float) -> None:
    result = canonical(value, code)
    assert result is None or (isinstance(result[0], float) and isinstance(result[1], str))


@settings(max_examples=500, deadline=None)
@given(st.text(UCUM_ALPHABET, max_size=60) | st.lists(UCUM_PIECES, max_size=30).map("".join))
def test_never_raises_on_unit_like_text(code: str) -> None:
    result = canonical(1.0, code)
    if result is not None:
        assert result[1] == "1" or all(part for part in result[1].split("."))


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.sampled_from(["mg", "mg/dL", "mmol/L", "10*9/L", "mm[Hg]", "[lb_av]", "/min", "%"]),
)
def test_scaling_is_linear(value: float, code: str) -> None:
    one = c(1.0, code)
    scaled = c(value, code)
    assert scaled[1] == one[1]
    assert scaled[0] == pytest.approx(value * one[0], rel=1e-12, abs=1e-300)
