"""Exercise 15 checks: the solution passes; the skeleton and plausible wrong answers fail."""
import pytest
import torch
from helpers import SKELETON, fails

from featlab import checks


# --- solutions ---------------------------------------------------------------------------

def channel_objective(acts, channel):
    return acts[:, channel].mean()


def fourier_scale(h, w):
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return 1.0 / torch.sqrt(fy ** 2 + fx ** 2).clamp_min(1.0 / max(h, w))


def ascent_step(model, x, channel, lr, sign=1.0, zero=True, whole=False):
    a = model(x)
    obj = a.mean() if whole else channel_objective(a, channel)
    obj.backward()
    with torch.no_grad():
        x += sign * lr * x.grad
    if zero:
        x.grad.zero_()
    return x


def test_solutions_pass():
    checks.check_channel_objective(channel_objective)
    checks.check_fourier_scale(fourier_scale)
    checks.check_ascent_step(ascent_step)


def test_skeleton_fails():
    for check in (checks.check_channel_objective, checks.check_fourier_scale, checks.check_ascent_step):
        fails(check, SKELETON, "None")


# --- plausible wrong answers -------------------------------------------------------------

def test_channel_objective_wrong():
    c = checks.check_channel_objective
    fails(c, lambda a, k: a.mean(), "whole layer")
    fails(c, lambda a, k: a[:, k].sum(), "sum")
    fails(c, lambda a, k: a[k].mean(), "batch dimension")
    fails(c, lambda a, k: a[:, k].mean(dim=(1, 2)), "one number per image")
    fails(c, lambda a, k: a[:, k].mean().item(), "torch.Tensor")
    fails(c, lambda a, k: a[:, k].mean().detach(), "cut off from the graph")
    fails(c, lambda a, k: "big", "torch.Tensor")


def test_fourier_scale_wrong():
    c = checks.check_fourier_scale
    fy = lambda h: torch.fft.fftfreq(h)[:, None]  # noqa: E731
    fails(c, lambda h, w: 1 / torch.sqrt(fy(h) ** 2 + torch.fft.fftfreq(w)[None] ** 2).clamp_min(1 / max(h, w)),
          "rfftfreq")
    fails(c, lambda h, w: 1 / torch.sqrt(fy(h) ** 2 + torch.fft.rfftfreq(w)[None] ** 2), "inf/nan")
    fails(c, lambda h, w: torch.sqrt(fy(h) ** 2 + torch.fft.rfftfreq(w)[None] ** 2).clamp_min(1 / max(h, w)),
          "the frequency f itself")
    fails(c, lambda h, w: 1 / torch.sqrt(torch.fft.fftfreq(h, 1 / h)[:, None] ** 2
                                         + torch.fft.rfftfreq(w, 1 / w)[None] ** 2).clamp_min(1.0),
          "cycles per pixel")
    fails(c, lambda h, w: fourier_scale(h, w).T, "swapped")
    fails(c, lambda h, w: [[1.0]], "torch.Tensor")


def test_ascent_step_wrong():
    c = checks.check_ascent_step
    fails(c, lambda m, x, k, lr: ascent_step(m, x, k, lr, sign=-1.0), "DESCENT")
    fails(c, lambda m, x, k, lr: ascent_step(m, x, k, lr, zero=False), "zero")
    fails(c, lambda m, x, k, lr: ascent_step(m, x, k, lr, whole=True), "WHOLE layer")

    def weights_instead(m, x, k, lr):
        opt = torch.optim.SGD(m.parameters(), lr=lr)
        (-m(x)[:, k].mean()).backward()
        opt.step()
        return x

    fails(c, weights_instead, "weights changed")

    def no_update(m, x, k, lr):
        m(x)[:, k].mean().backward()
        return x

    fails(c, no_update, "did not change")

    def new_tensor(m, x, k, lr):
        m(x)[:, k].mean().backward()
        return (x + lr * x.grad).detach()

    fails(c, new_tensor, "zero")
    fails(c, lambda m, x, k, lr: x[0], "shape")


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _ascent(objective=lambda a, c: a[:, c].mean(), update=lambda g: g):
    def step(model, x, channel, lr):
        objective(model(x), channel).backward()
        with torch.no_grad():
            x += lr * update(x.grad)
        x.grad.zero_()
        return x
    return step


def _ascent_out_of_place(model, x, channel, lr):
    model(x)[:, channel].mean().backward()
    with torch.no_grad():
        x = x + lr * x.grad                 # a new tensor, without requires_grad
    return x


WRONG = {
    "ascent: first image only": (checks.check_ascent_step, _ascent(objective=lambda a, c: a[0, c].mean()), ""),
    "ascent: sum objective": (checks.check_ascent_step, _ascent(objective=lambda a, c: a[:, c].sum()), ""),
    "ascent: normalised gradient": (checks.check_ascent_step, _ascent(update=lambda g: g / g.norm()), ""),
    "ascent: sign of the gradient": (checks.check_ascent_step, _ascent(update=torch.sign), ""),
    "ascent: out of place": (checks.check_ascent_step, _ascent_out_of_place, "x.grad"),
    "objective: per image": (checks.check_channel_objective, lambda a, c: a[:, c].mean(dim=(1, 2)), "one number per image"),
    "objective: last axis": (checks.check_channel_objective, lambda a, c: a[..., c].mean(), ""),
    "objective: max": (checks.check_channel_objective, lambda a, c: a[:, c].max(), ""),
    "objective: detached": (checks.check_channel_objective, lambda a, c: a[:, c].detach().mean(), "cut off"),
    "fourier: full fftfreq columns": (checks.check_fourier_scale, lambda h, w: 1 / torch.sqrt(
        torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.fftfreq(w)[None] ** 2).clamp_min(1 / max(h, w)), "w // 2 + 1"),
    "fourier: 1 / (f + eps)": (checks.check_fourier_scale, lambda h, w: 1 / (torch.sqrt(
        torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.rfftfreq(w)[None] ** 2) + 1e-6), ""),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
