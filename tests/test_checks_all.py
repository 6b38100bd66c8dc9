"""What every exercise check shares: a mistake that raises inside the learner's function is a
failed check (ExerciseError naming the exception and the call), never a raw exception; so is an
answer of the wrong kind."""
import inspect
import re

import numpy as np
import pytest
import torch

import featlab.checks as checks
from featlab.checks import ExerciseError

CHECKS = sorted(n for n in dir(checks) if n.startswith("check_"))


def test_every_check_takes_one_function():
    assert len(CHECKS) >= 45
    for name in CHECKS:
        assert list(inspect.signature(getattr(checks, name)).parameters) != [], name
        assert len(inspect.signature(getattr(checks, name)).parameters) == 1, name


@pytest.mark.parametrize("name", CHECKS)
def test_an_exception_in_the_learners_function_fails_the_check(name):
    def broadcast_slip(*args, **kwargs):
        raise RuntimeError("The size of tensor a (3) must match the size of tensor b (4) at "
                           "non-singleton dimension 1")

    with pytest.raises(ExerciseError) as e:
        getattr(checks, name)(broadcast_slip)
    message = str(e.value)
    assert "raised RuntimeError: The size of tensor a (3)" in message
    assert "broadcast_slip(" in message                 # the call that raised is named
    assert "\n" not in message
    assert isinstance(e.value.__cause__, RuntimeError)


@pytest.mark.parametrize("name", CHECKS)
def test_a_lambda_that_raises_is_named_after_the_exercise_function(name):
    with pytest.raises(ExerciseError) as e:
        getattr(checks, name)(lambda *a, **k: 1 // 0)
    assert "raised ZeroDivisionError" in str(e.value) or "divided by zero" in str(e.value)
    assert "<lambda>" not in str(e.value)


ODD_ANSWERS = {"a string": lambda *a, **k: "42", "a nested list": lambda *a, **k: [[1, 2], [3]],
               "an int": lambda *a, **k: 3, "a 0-d tensor": lambda *a, **k: torch.tensor(0.5),
               "an empty array": lambda *a, **k: np.zeros((0,)), "a dict": lambda *a, **k: {"a": 1}}


@pytest.mark.parametrize("answer", ODD_ANSWERS)
@pytest.mark.parametrize("name", CHECKS)
def test_an_answer_of_the_wrong_kind_fails_the_check(name, answer):
    """Whatever the learner returns, the check says what is wrong (fail), never crashes (error)."""
    with pytest.raises(ExerciseError):
        getattr(checks, name)(ODD_ANSWERS[answer])


def test_every_check_is_called_by_a_master():
    from solutions import check_calls
    assert sorted(c for _, c, _ in check_calls()) == CHECKS


def _ids(call):
    return f"{call[0]:02d}-{call[1]}"


def _calls():
    from solutions import check_calls
    return check_calls()


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("call", _calls(), ids=_ids)
def test_the_solution_of_the_master_passes(call, lang, capsys, monkeypatch):
    """The function as written in exercises/src/NN_*.py (the solution notebook's code) passes,
    with its ✓ line in the language asked for."""
    from solutions import solution
    monkeypatch.setenv("FEATLAB_LANG", lang)
    number, check, fn = call
    getattr(checks, check)(getattr(solution(number), fn))
    out = capsys.readouterr().out
    assert out.startswith("✓")
    if lang == "zh":
        assert out.startswith("✓ ") and re.search(r"[\u4e00-\u9fff]", out), out


IN_PLACE_ALLOWED = {"check_ascent_step", "check_arcface_logits", "check_cosine_logits"}


@pytest.mark.parametrize("name", CHECKS)
def test_a_function_that_changes_its_input_fails(name):
    """The caller's tensors and arrays must stay as they were (x /= norm, x -= mean, fill_diagonal_)."""
    seen = []

    def scribbles(*args, **kwargs):
        for a in list(args) + [v for d in args if isinstance(d, dict) for v in d.values()]:
            if isinstance(a, torch.Tensor) and a.numel() and not a.requires_grad:
                seen.append(a)
                a[(0,) * a.ndim] += 1 if a.dtype != torch.bool else True
            elif isinstance(a, np.ndarray) and a.size:
                seen.append(a)
                a.reshape(-1)[0] += 1
        return None

    if name in IN_PLACE_ALLOWED:
        pytest.skip("this exercise's function may change its input")
    with pytest.raises(ExerciseError) as e:
        getattr(checks, name)(scribbles)
    if not seen:
        pytest.skip("this check gives the function no tensor or array")
    assert "in place" in str(e.value)
