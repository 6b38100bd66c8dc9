"""Exercise 02 checks: the solution passes; the skeleton and plausible wrong answers fail."""
import pytest

from featlab.checks import check_rf_full, check_rf_recursion, check_unit_span
from helpers import SKELETON, fails
from solutions import solution

S = solution(2)
CHECKS = [check_rf_recursion, check_rf_full, check_unit_span]


def test_other_right_answers_pass(capsys):
    check_rf_recursion(lambda layers: [list(t) for t in S.rf_recursion(layers)])      # lists, not tuples
    check_unit_span(lambda r, s, p, i, n: [min(max(-p + i * s, 0), n), min(max(-p + i * s + r, 0), n)])
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("check", CHECKS)
def test_skeleton_fails(check):
    fails(check, SKELETON, "returned None")


def rec(layers, grow=lambda r, k, s, st: r + (k - 1) * s, start=(1, 1), before=False, swap=False):
    r, s, out = start[0], start[1], []
    for k, st in layers:
        if before:
            out.append((r, s))
        r, s = grow(r, k, s, st), s * st
        if not before:
            out.append((s, r) if swap else (r, s))
    return out


def full(layers, grow=lambda r, k, s, d: r + d * (k - 1) * s, pad=lambda p, q, s, st: p + q * s):
    r, s, p, out = 1, 1, 0, []
    for k, st, q, d in layers:
        r, p, s = grow(r, k, s, d), pad(p, q, s, st), s * st
        out.append((r, s, p))
    return out


def span(lo=lambda start: max(start, 0), hi=lambda stop, n: min(stop, n), sign=-1, extra=0):
    return lambda r, s, p, i, n: (lo(sign * p + i * s), hi(sign * p + i * s + r + extra, n))


WRONG = {
    "rec: stride updated before R": (check_rf_recursion, lambda L: rec(L, grow=lambda r, k, s, st: r + (k - 1) * s * st), "after layer"),
    "rec: k instead of k - 1": (check_rf_recursion, lambda L: rec(L, grow=lambda r, k, s, st: r + k * s), "after layer"),
    "rec: stride ignored": (check_rf_recursion, lambda L: rec(L, grow=lambda r, k, s, st: r + k - 1), "after layer"),
    "rec: product of kernels": (check_rf_recursion, lambda L: rec(L, grow=lambda r, k, s, st: r * k), "after layer"),
    "rec: starts at 0": (check_rf_recursion, lambda L: rec(L, start=(0, 1)), "after layer"),
    "rec: value before each layer": (check_rf_recursion, lambda L: rec(L, before=True), "after layer"),
    "rec: (S, R) swapped": (check_rf_recursion, lambda L: rec(L, swap=True), "after layer"),
    "rec: only the last layer": (check_rf_recursion, lambda L: rec(L)[-1:], "one per layer"),
    "rec: R / 2 float": (check_rf_recursion, lambda L: [(r + 0.5, s) for r, s in rec(L)], "int"),
    "full: padding not times stride": (check_rf_full, lambda L: full(L, pad=lambda p, q, s, st: p + q), "effective padding"),
    "full: padding times the new stride": (check_rf_full, lambda L: full(L, pad=lambda p, q, s, st: p + q * s * st),
                                           "effective padding"),
    "full: dilation ignored": (check_rf_full, lambda L: full(L, grow=lambda r, k, s, d: r + (k - 1) * s), "dilated"),
    "full: dilation as d*k - 1": (check_rf_full, lambda L: full(L, grow=lambda r, k, s, d: r + (d * k - 1) * s), "dilated"),
    "full: padding times dilation": (check_rf_full, lambda L: [(r, s, p) for (r, s, _), (_, _, p) in zip(
        full(L), full([(k, st, q * d, d) for k, st, q, d in L]))], "effective padding"),
    "span: not clipped": (check_unit_span, span(lo=lambda a: a, hi=lambda b, n: b), "clip it to the image"),
    "span: start clipped only": (check_unit_span, span(hi=lambda b, n: b), "expected"),
    "span: stop clipped only": (check_unit_span, span(lo=lambda a: a), "expected"),
    "span: stop included": (check_unit_span, span(extra=-1), "expected"),
    "span: +P instead of -P": (check_unit_span, span(sign=1), "expected"),
    "span: clipped to n - 1": (check_unit_span, span(hi=lambda b, n: min(b, n - 1)), "expected"),
    "span: centred on i*S": (check_unit_span, lambda r, s, p, i, n: (max(i * s - r // 2, 0), min(i * s - r // 2 + r, n)),
                             "expected"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
