"""Exercise 12 checks: the solution passes, the skeleton and plausible wrong answers fail.

No test here measures speed: check_throughput runs the learner's function on a fake clock.
"""
import statistics
import time

import numpy as np
import pytest
import torch

import featlab as fl
from helpers import SKELETON, fails
from solutions import solution


# --- the solution, as in exercises/src/12_performance.py ------------------------------------

S = solution(12)
throughput, topk_agreement, amdahl_speedup = S.throughput, S.topk_agreement, S.amdahl_speedup


# --- 1. throughput ----------------------------------------------------------------------------

def test_throughput_solution_and_skeleton(capsys):
    fl.checks.check_throughput(throughput)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_throughput, SKELETON, "returned None")


def _throughput(fn, n_items, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None,
                reduce=statistics.median, sync_after=True, timed_warmup=False, calls=None, out=None):
    """The solution with one mistake switched on."""
    times = []
    for _ in range(warmup):
        t0 = clock()
        fn()
        if sync_after:
            sync()
        if timed_warmup:
            times.append(clock() - t0)
    for _ in range(repeats if calls is None else calls):
        if not sync_after:
            sync()
        t0 = clock()
        fn()
        if sync_after:
            sync()
        times.append(clock() - t0)
    value = reduce(times)
    return n_items / value if out is None else out(n_items, value)


def test_throughput_alternatives_pass():
    fl.checks.check_throughput(lambda fn, n, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None:
                               _throughput(fn, n, repeats, warmup, clock, sync, reduce=lambda t: float(np.median(t))))
    fl.checks.check_throughput(lambda fn, n, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None:
                               _throughput(fn, n, repeats, warmup, clock, sync, reduce=statistics.median,
                                           out=lambda n, t: np.float64(n / t)))


def _variant(**mistake):
    return lambda fn, n, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None: \
        _throughput(fn, n, repeats, warmup, clock, sync, **mistake)


@pytest.mark.parametrize("mistake, needle", [
    (dict(reduce=statistics.mean), "MEDIAN (statistics.median)"),
    (dict(reduce=min), "best (shortest) run"),
    (dict(reduce=max), "slowest run"),
    (dict(reduce=sum), "total time"),
    (dict(timed_warmup=True), "warm-up calls were timed"),
    (dict(out=lambda n, t: 1 / t), "multiply by n_items"),
    (dict(out=lambda n, t: t), "seconds per call"),
    (dict(out=lambda n, t: t / n), "seconds per item"),
    (dict(sync_after=False), "sync()"),
    (dict(calls=6), "called"),
])
def test_throughput_wrong(mistake, needle):
    fails(fl.checks.check_throughput, _variant(**mistake), needle)


def test_throughput_without_warmup_or_clock():
    def no_warmup(fn, n, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None):
        return _throughput(fn, n, repeats, 0, clock, sync)

    def wall_clock(fn, n, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None):
        return _throughput(fn, n, repeats, warmup, time.perf_counter, sync)

    def never_sync(fn, n, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None):
        return _throughput(fn, n, repeats, warmup, clock, lambda: None)

    def numpy_median_no_sync(fn, n, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None):
        return _throughput(fn, n, repeats, warmup, clock, lambda: None, reduce=np.median)  # n / np.float64(0)

    fails(fl.checks.check_throughput, no_warmup, "warm-up calls are missing")
    fails(fl.checks.check_throughput, wall_clock, "clock")
    fails(fl.checks.check_throughput, never_sync, "sync()")
    with pytest.warns(RuntimeWarning):  # n / 0.0 in NumPy: inf, not an exception
        fails(fl.checks.check_throughput, numpy_median_no_sync, "sync()")
    fails(fl.checks.check_throughput, lambda fn, n, *a: fn(1), "without arguments")
    fails(fl.checks.check_throughput, lambda fn, n, *a: [1.0, 2.0], "a number")


# --- 2. top-k agreement -----------------------------------------------------------------------

def test_topk_agreement_solution_and_skeleton(capsys):
    fl.checks.check_topk_agreement(topk_agreement)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_topk_agreement, SKELETON, "returned None")


def test_topk_agreement_alternatives_pass():
    def with_isin(a, b):
        return np.isin(a, b).mean() if a.shape[0] == 1 else np.mean([np.isin(x, y).mean() for x, y in zip(a, b)])

    def with_torch(a, b):
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        return (a[:, :, None] == b[:, None, :]).any(2).float().mean()

    fl.checks.check_topk_agreement(with_isin)
    fl.checks.check_topk_agreement(with_torch)


def _inter(a, b):
    return np.array([len(set(x.tolist()) & set(y.tolist())) for x, y in zip(a, b)])


@pytest.mark.parametrize("wrong, needle", [
    (lambda a, b: (a == b).mean(), "position by position"),
    (lambda a, b: (a[:, 0] == b[:, 0]).mean(), "top-1"),
    (lambda a, b: _inter(a, b).mean(), "divide by k"),
    (lambda a, b: _inter(a, b).sum(), "total count"),
    (lambda a, b: np.mean([len(set(x.tolist()) & set(y.tolist())) / len(set(x.tolist()) | set(y.tolist()))
                           for x, y in zip(a, b)]), "union"),
    (lambda a, b: (_inter(a, b) > 0).mean(), "at least one"),
    (lambda a, b: _inter(a, b) / a.shape[1], "one per query"),
    (lambda a, b: float(np.mean(_inter(a, b) / a.shape[0])), "expected"),   # divided by Q instead of k
])
def test_topk_agreement_wrong(wrong, needle):
    fails(fl.checks.check_topk_agreement, wrong, needle)


# --- 3. Amdahl ---------------------------------------------------------------------------------

def test_amdahl_solution_and_skeleton(capsys):
    fl.checks.check_amdahl_speedup(amdahl_speedup)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_amdahl_speedup, SKELETON, "returned None")
    fl.checks.check_amdahl_speedup(lambda p, s: 1.0 / (1.0 - p + p / s))
    fl.checks.check_amdahl_speedup(lambda p, s: torch.tensor(1 / ((1 - p) + p / s)))


@pytest.mark.parametrize("wrong, needle", [
    (lambda p, s: (1 - p) + p / s, "its inverse"),
    (lambda p, s: 1 / ((1 - p) + p * s), "not p · s"),
    (lambda p, s: (1 - p) + p * s, "instead of dividing"),
    (lambda p, s: 1 / (1 - p), "infinitely fast"),
    (lambda p, s: s, "less than s"),
    (lambda p, s: 1 / (p + (1 - p) / s), "swapped"),
    (lambda p, s: 1 / ((1 - p) + p / s) + 0.01, "expected"),
    (lambda p, s: 1 / ((1 - p) + p / s) if np.isfinite(s) else 1 / (1 - p) + 1, "infinitely fast half"),
    (lambda p, s: 1 / ((1 - p) + p / s) if p < 1 else 1 / ((1 - p) * s), "divided by zero"),
])
def test_amdahl_wrong(wrong, needle):
    fails(fl.checks.check_amdahl_speedup, wrong, needle)


def test_checks_are_exported():
    names = fl.checks.nb12_performance.__all__
    assert set(names) == {"check_throughput", "check_topk_agreement", "check_amdahl_speedup"}
    assert all(hasattr(fl.checks, n) for n in names)


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _timed_with(median):
    """The solution with another middle value: _throughput with ``reduce=median``."""
    return lambda fn, n, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None: \
        _throughput(fn, n, repeats, warmup, clock, sync, reduce=median)


WRONG = {
    "median: sorted(t)[n // 2]": (fl.checks.check_throughput, _timed_with(lambda t: sorted(t)[len(t) // 2]), "two middle"),
    "median: torch.median (lower)": (fl.checks.check_throughput, _timed_with(lambda t: float(torch.tensor(t).median())),
                                     "two middle"),
    "median: statistics.median_high": (fl.checks.check_throughput, _timed_with(statistics.median_high), "two middle"),
    "median: mean": (fl.checks.check_throughput, _timed_with(statistics.mean), "averaged"),
    "median: min": (fl.checks.check_throughput, _timed_with(min), "shortest"),
    "topk: isin over all queries": (fl.checks.check_topk_agreement, lambda a, b: float(np.isin(a, b).mean()), ""),
    "topk: divided by the union": (fl.checks.check_topk_agreement,
                                   lambda a, b: float(np.mean([len(set(x) & set(y)) / len(set(x) | set(y)) for x, y in zip(a, b)])),
                                   "union"),
    "topk: positions": (fl.checks.check_topk_agreement, lambda a, b: float((a == b).mean()), "position by position"),
    "amdahl: p * s": (fl.checks.check_amdahl_speedup, lambda p, s: 1 / ((1 - p) + p * s), "p / s"),
    "amdahl: new time": (fl.checks.check_amdahl_speedup, lambda p, s: (1 - p) + p / s, "inverse"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
