"""Checks for ``exercises/12_*.ipynb`` (performance; notebook ``notebooks/12_performance.ipynb``).

Speed is never measured here: ``check_throughput`` hands the learner's function a fake clock and a
fake asynchronous device whose calls take known times, so the check is exact on any machine.
"""
from __future__ import annotations

import math
import statistics

import numpy as np

from ..i18n import _
from ._common import ExerciseError, _items, _ok, _scalar, learner_check
from ._common import _diagnose as diagnose

__all__ = ["check_throughput", "check_topk_agreement", "check_amdahl_speedup"]

_RTOL = 1e-6


def _diagnose(got: float, want: float, wrong: list[tuple[str, float]], what: str) -> None:
    diagnose(got, want, wrong, what, _RTOL, 1e-12)


# --- 1. throughput -----------------------------------------------------------------------------

class _FakeDevice:
    """A clock that moves only when work is done, and a device that runs ``fn`` calls taking
    ``durations[i]`` seconds each. ``asynchronous``: like a GPU, a call only queues its work;
    the time passes at the next ``sync()`` (as ``torch.cuda.synchronize``)."""

    def __init__(self, durations: list[float], asynchronous: bool):
        self.durations, self.asynchronous = durations, asynchronous
        self.now, self.queued, self.calls = 1000.0, 0.0, 0

    def clock(self) -> float:
        return self.now

    def fn(self, *args, **kwargs) -> None:
        if args or kwargs:
            raise ExerciseError(_("call fn() without arguments: it is the work to time, ready to run."))
        d = self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1
        if self.asynchronous:
            self.queued += d
        else:
            self.now += d

    def sync(self) -> None:
        self.now += self.queued
        self.queued = 0.0


def _run_throughput(throughput, dev: _FakeDevice, n_items: int, repeats: int, warmup: int) -> float:
    what = f"throughput(fn, n_items={n_items}, repeats={repeats}, warmup={warmup}, clock=..., sync=...)"
    try:
        out = throughput(dev.fn, n_items, repeats, warmup, dev.clock, dev.sync)   # in the order of the signature
    except ExerciseError as e:
        if not isinstance(e.__cause__, ZeroDivisionError):
            raise
        raise ExerciseError(
            _("{what} divided by zero: every timed call measured 0 s. ").format(what=what)
            + (_("The device is asynchronous (like a GPU): fn() only queues the work. Call sync() after fn() "
                 "and BEFORE reading the clock the second time.") if dev.asynchronous else
               _("Read the time with the clock argument (t0 = clock(); fn(); sync(); t1 = clock()), not "
                 "time.perf_counter() or time.time()."))) from None
    return _scalar(out, what, many_hint=_("Return one number: n_items divided by the median time of one call."),
                   nan_hint=_("Every timed call measured 0 s? Call sync() after fn() and before reading the "
                              "clock (asynchronous devices only queue the work), and use the clock argument."))


@learner_check
def check_throughput(throughput) -> None:
    """``throughput(fn, n_items, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None)``:
    call fn() ``warmup`` times untimed, then time ``repeats`` calls with ``clock`` (``sync()`` after
    each call, before reading the clock), and return ``n_items / median(times)`` items per second."""
    cases = [  # (warm-up durations, timed durations, n_items, asynchronous)
        ([4.0, 2.0], [0.10, 0.40, 0.12, 0.11, 0.50], 16, False),
        ([3.0], [0.40, 0.12, 0.50, 0.11, 0.10], 16, True),   # medians of every mistake differ
        ([], [0.30, 0.20, 0.90], 8, True),
        ([3.0], [0.25, 0.05, 0.80, 0.20, 0.22], 4, False),
        ([2.0, 1.5], [0.12, 0.30, 0.20, 0.90], 8, False),    # even repeats: the median is a mean of two
        ([5.0, 1.0], [0.90, 0.12, 0.70, 0.15, 0.20, 0.35], 6, True),
    ]
    for warm, timed, n, asynchronous in cases:
        warmup, repeats = len(warm), len(timed)
        dev = _FakeDevice(warm + timed, asynchronous)
        got = _run_throughput(throughput, dev, n, repeats, warmup)
        kind = _("an asynchronous device (like a GPU)") if asynchronous else _("a synchronous device (like a CPU)")
        if dev.calls != warmup + repeats:
            hint = (_(" It looks like the warm-up calls are missing: call fn() `warmup` times before timing.")
                    if dev.calls == repeats and warmup else "")
            raise ExerciseError(_("fn() was called {calls} times with warmup={warmup}, repeats={repeats}; "
                                  "expected warmup + repeats = {runs}.{hint}").format(
                                          calls=dev.calls, warmup=warmup, repeats=repeats, runs=warmup + repeats,
                                          hint=hint))
        if asynchronous and dev.queued:
            raise ExerciseError(_("work was still queued on the asynchronous device when throughput returned: "
                                  "call sync() after every fn(), also after the warm-up calls."))
        want = n / statistics.median(timed)
        if asynchronous and warmup and math.isclose(got, n / statistics.median([warm[-1]] + timed[:-1]), rel_tol=_RTOL):
            raise ExerciseError(_("each timed call measured the previous call's work: the asynchronous device "
                                  "only queues work in fn(). Call sync() after fn() and BEFORE reading the "
                                  "clock, and also after the warm-up calls."))
        if got > 100 * want:
            raise ExerciseError(
                _("throughput = {got:.6g} items/s on {kind}, expected {want:.6g}: far too fast. ").format(
                  got=got, kind=kind, want=want)
                + (_("On an asynchronous device fn() only queues the work: call sync() after fn() and before "
                     "reading the clock. ") if asynchronous else "")
                + _("Read the time with the clock argument (clock()), not time.perf_counter()."))
        wrong = [
            (_("you averaged the times; take the MEDIAN (statistics.median), which ignores one slow run."),
             n / statistics.mean(timed)),
            (_("this is the best (shortest) run; take the MEDIAN of the timed runs."), n / min(timed)),
            (_("with an even number of repeats the median is the mean of the two middle times; sorted(times)[n "
               "// 2] takes the upper one only. Use statistics.median (or torch/np.median's mean of the middle "
               "two)."),
             n / sorted(timed)[len(timed) // 2]),
            (_("with an even number of repeats the median is the mean of the two middle times, not the lower "
               "one (torch.median returns the lower). Use statistics.median or np.median."),
             n / sorted(timed)[(len(timed) - 1) // 2]),
            (_("this is the slowest run; take the MEDIAN of the timed runs."), n / max(timed)),
            (_("the warm-up calls were timed too: time only the `repeats` calls after the warm-up."),
             n / statistics.median(warm + timed)),
            (_("this is calls per second; multiply by n_items (fn processes n_items per call)."),
             1 / statistics.median(timed)),
            (_("this is seconds per call, not items per second: return n_items / median(times)."),
             statistics.median(timed)),
            (_("this is seconds per item: return items per second, n_items / median(times)."),
             statistics.median(timed) / n),
            (_("you divided the total time of all timed calls; divide n_items by the MEDIAN time of one call."),
             n / sum(timed)),
        ]
        if asynchronous:
            wrong.append((_("each timed call measured the previous call's work: call sync() after fn() and "
                            "BEFORE reading the clock."), n / statistics.median([0.0] + timed[:-1])
                          if statistics.median([0.0] + timed[:-1]) else math.inf))
        _diagnose(got, want, wrong, _("throughput on {kind} (warmup={warmup}, repeats={repeats}, n_items={n})").format(
                                      kind=kind, warmup=warmup, repeats=repeats, n=n))
    _ok(_("throughput: warm-up untimed, sync() before each clock reading, n_items / median time"))


# --- 2. top-k agreement ------------------------------------------------------------------------

def _reference_overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / a.shape[1] for x, y in zip(a, b)]))


def _topk_cases(seed: int, q: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two (q, k) top-k lists over n rows: b = a reordered within rows, a few ids replaced."""
    rng = np.random.default_rng(seed)
    a = np.stack([rng.choice(n, k, replace=False) for __ in range(q)])
    b = np.empty_like(a)
    for r in range(q):
        row = rng.permutation(a[r])
        swap = r % (k + 1)                                     # 0 .. k ids replaced
        outside = rng.choice(np.setdiff1d(np.arange(n), a[r]), swap, replace=False)
        row[rng.choice(k, swap, replace=False)] = outside
        b[r] = row
    return a, b


@learner_check
def check_topk_agreement(topk_agreement) -> None:
    """``topk_agreement(a_idx, b_idx)``: two (Q, k) integer arrays of top-k row ids (as
    ``fl.search`` returns) -> the mean over the Q queries of |A_q ∩ B_q| / k (order ignored)."""
    for seed, q, k, n in [(120, 6, 4, 20), (121, 5, 3, 9)]:
        a, b = _topk_cases(seed, q, k, n)
        what = _("topk_agreement on ({q}, {k}) lists").format(q=q, k=k)
        out = topk_agreement(a.copy(), b.copy())
        if _items(out) is not None and len(_items(out)) == q and q != 1:
            raise ExerciseError(_("{what} returned {q} numbers, one per query: average them over the queries "
                                  "to get one number.").format(what=what, q=q))
        got = _scalar(out, what, many_hint=_("Average over the queries to get one number."))
        want = _reference_overlap(a, b)
        inter = np.array([len(set(x.tolist()) & set(y.tolist())) for x, y in zip(a, b)])
        union = np.array([len(set(x.tolist()) | set(y.tolist())) for x, y in zip(a, b)])
        wrong = [
            (_("you compared the lists position by position (a == b); the order within a top-k list does not "
               "matter here: count the ids the two lists have in common (set intersection)."),
             float((a == b).mean())),
            (_("you compared only the first hit of each list (top-1); count the common ids among all k."),
             float((a[:, 0] == b[:, 0]).mean())),
            (_("this is the number of common ids, not the share: divide by k."), float(inter.mean())),
            (_("this is the total count of common ids: divide by k and average over the queries."),
             float(inter.sum())),
            (_("you divided by the size of the union (Jaccard index); divide the common ids by k."),
             float((inter / union).mean())),
            (_("this is the share of queries with at least one id in common; take the share of the k ids in "
               "common, averaged over the queries."), float((inter > 0).mean())),
        ]
        _diagnose(got, want, wrong, what)
    a, __ = _topk_cases(122, 4, 5, 30)
    same = _scalar(topk_agreement(a.copy(), a[:, ::-1].copy()), "topk_agreement(a, a reversed)")
    if not math.isclose(same, 1.0, rel_tol=_RTOL):
        raise ExerciseError(_("two lists with the same ids in another order should agree fully (1.0); got "
                              "{same:.6g}. Compare the SETS of ids, not their positions.").format(same=same))
    other = np.array([[100, 101, 102, 103, 104]] * 4)
    none = _scalar(topk_agreement(a.copy(), other), "topk_agreement(a, disjoint lists)")
    if not math.isclose(none, 0.0, abs_tol=1e-12):
        raise ExerciseError(_("lists without a common id should agree 0.0; got {none:.6g}.").format(none=none))
    _ok(_("topk_agreement: mean over queries of |common ids| / k, order ignored"))


# --- 3. Amdahl's law -------------------------------------------------------------------------

@learner_check
def check_amdahl_speedup(amdahl_speedup) -> None:
    """``amdahl_speedup(p, s)``: a part taking the fraction ``p`` of the time becomes ``s`` times
    faster -> overall speed-up ``1 / ((1 - p) + p / s)``."""
    for p, s in [(0.75, 2.0), (0.9, 10.0), (0.3, 4.0), (0.6, 0.5)]:
        what = f"amdahl_speedup(p={p}, s={s})"
        got = _scalar(amdahl_speedup(p, s), what,
                      nan_hint=_("Check the formula 1 / ((1 - p) + p / s) for a division by zero."))
        want = 1 / ((1 - p) + p / s)
        wrong = [
            (_("this is the new TIME as a fraction of the old, (1 - p) + p / s; the speed-up is its inverse."),
             (1 - p) + p / s),
            (_("a part that runs s times faster takes p / s of the time, not p · s: speed-up = 1 / ((1 - p) + "
               "p / s)."), 1 / ((1 - p) + p * s)),
            (_("you multiplied the fractions by the speed-ups instead of dividing the time; speed-up = 1 / ((1 "
               "- p) + p / s)."), (1 - p) + p * s),
            (_("this is the limit for an infinitely fast part, 1 / (1 - p); keep the p / s term."), 1 / (1 - p)),
            (_("the part that is NOT sped up still takes (1 - p) of the time: the overall speed-up is less "
               "than s."), s),
            (_("p is the fraction that gets FASTER: the part that stays is (1 - p); you swapped them."),
             1 / (p + (1 - p) / s)),
        ]
        _diagnose(got, want, wrong, what)
    for p, s, want, why in [(0.5, math.inf, 2.0, _("an infinitely fast half gives 2×")),
                            (0.0, 8.0, 1.0, _("speeding up nothing gives 1×")),
                            (1.0, 8.0, 8.0, _("speeding up everything 8× gives 8×"))]:
        try:
            got = _scalar(amdahl_speedup(p, s), f"amdahl_speedup(p={p}, s={s})")
        except ExerciseError as e:
            if not isinstance(e.__cause__, ZeroDivisionError):
                raise
            raise ExerciseError(_("amdahl_speedup(p={p}, s={s}) divided by zero; with the formula 1 / ((1 - p) "
                                  "+ p / s) it does not.").format(p=p, s=s)) from None
        if not math.isclose(got, want, rel_tol=_RTOL):
            raise ExerciseError(_("amdahl_speedup(p={p}, s={s}) = {got:.6g}, expected {want:g}: {why}.").format(
                                  p=p, s=s, got=got, want=want, why=why))
    _ok(_("amdahl_speedup: 1 / ((1 - p) + p / s), bounded by 1 / (1 - p)"))
