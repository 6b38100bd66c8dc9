"""Exercise 01 checks: the solution passes; the skeleton and plausible wrong answers fail."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featlab.checks import check_conv1x1_matmul, check_conv2d_unfold, check_conv_output_size
from helpers import SKELETON, fails
from solutions import solution

S = solution(1)
CHECKS = [check_conv_output_size, check_conv2d_unfold, check_conv1x1_matmul]


def test_other_right_answers_pass(capsys):
    check_conv_output_size(lambda n, k, s=1, p=0, d=1: math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1)
    check_conv_output_size(lambda n, k, s=1, p=0, d=1: np.int64((n + 2 * p - d * (k - 1) - 1) // s + 1))
    check_conv2d_unfold(lambda x, w, b, s=1, p=0: F.conv2d(x, w, b, stride=s, padding=p).double())
    check_conv1x1_matmul(lambda x, w, b: torch.einsum("nchw,oc->nohw", x, w) + b[:, None, None])
    assert capsys.readouterr().out.count("✓") == 4


@pytest.mark.parametrize("check", CHECKS)
def test_skeleton_fails(check):
    fails(check, SKELETON, "returned None")


def _unfold(x, weight, bias, stride, padding, *, flip=False, pad=True, kernel=None, swap_hw=False, no_bias=False):
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    if flip:
        weight = weight.flip(-1, -2)
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    cols = F.unfold(x, kernel or (kh, kw), padding=padding if pad else 0, stride=stride)
    y = weight.reshape(c_out, -1) @ cols
    y = y.view(n, c_out, ow, oh).transpose(2, 3) if swap_hw else y.view(n, c_out, oh, ow)
    return y if no_bias else y + bias.view(1, -1, 1, 1)


def _matmul(x, weight, bias, *, permute=True, transpose=True, no_bias=False):
    n, c, h, w = x.shape
    y = x.permute(0, 2, 3, 1).reshape(-1, c) @ (weight.T if transpose else weight) + (0 if no_bias else bias)
    return y.view(n, h, w, -1).permute(0, 3, 1, 2) if permute else y.view(n, -1, h, w)


WRONG = {  # name: (check, the wrong answer, a piece of the expected message)
    "size: dilation ignored": (check_conv_output_size, lambda n, k, s=1, p=0, d=1: (n + 2 * p - (k - 1) - 1) // s + 1,
                               "nn.Conv2d gives"),
    "size: dilation times k": (check_conv_output_size, lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * k) // s + 1,
                               "nn.Conv2d gives"),
    "size: padding once": (check_conv_output_size, lambda n, k, s=1, p=0, d=1: (n + p - d * (k - 1) - 1) // s + 1,
                           "nn.Conv2d gives"),
    "size: rounded up": (check_conv_output_size,
                         lambda n, k, s=1, p=0, d=1: math.ceil((n + 2 * p - d * (k - 1) - 1) / s) + 1, "nn.Conv2d"),
    "size: rounded to nearest": (check_conv_output_size,
                                 lambda n, k, s=1, p=0, d=1: round((n + 2 * p - d * (k - 1) - 1) / s) + 1, "nn.Conv2d"),
    "size: true division": (check_conv_output_size, lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * (k - 1) - 1) / s + 1,
                            ""),
    "size: float from np.floor": (check_conv_output_size,
                                  lambda n, k, s=1, p=0, d=1: np.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1, "int"),
    "size: no + 1": (check_conv_output_size, lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * (k - 1) - 1) // s,
                     "nn.Conv2d gives"),
    "size: no - 1": (check_conv_output_size, lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * (k - 1)) // s + 1,
                     "nn.Conv2d gives"),
    "unfold: bias missing": (check_conv2d_unfold, lambda *a: _unfold(*a, no_bias=True), "values differ"),
    "unfold: kernel flipped (true convolution)": (check_conv2d_unfold, lambda *a: _unfold(*a, flip=True), "values"),
    "unfold: padding not passed to unfold": (check_conv2d_unfold, lambda *a: _unfold(*a, pad=False), "raised"),
    "unfold: square kernel assumed": (check_conv2d_unfold, lambda x, w, b, s, p: _unfold(x, w, b, s, p, kernel=w.shape[-1]),
                                      "raised"),
    "unfold: H and W swapped in the view": (check_conv2d_unfold, lambda *a: _unfold(*a, swap_hw=True), ""),
    "unfold: weight reshaped column-first": (check_conv2d_unfold, lambda x, w, b, s, p: _unfold(
        x, w.permute(0, 1, 3, 2).contiguous(), b, s, p), "values differ"),
    "1x1: weight not transposed": (check_conv1x1_matmul, lambda *a: _matmul(*a, transpose=False), "raised"),
    "1x1: channels last": (check_conv1x1_matmul, lambda x, w, b: (x.permute(0, 2, 3, 1) @ w.T + b), "(N, H, W, C_out)"),
    "1x1: view instead of permute": (check_conv1x1_matmul, lambda *a: _matmul(*a, permute=False), "values differ"),
    "1x1: bias missing": (check_conv1x1_matmul, lambda *a: _matmul(*a, no_bias=True), "values differ"),
    "1x1: H and W swapped": (check_conv1x1_matmul, lambda *a: _matmul(*a).transpose(2, 3), "shape"),
    "1x1: bias on the width axis": (check_conv1x1_matmul, lambda x, w, b: torch.einsum("nchw,oc->nohw", x, w) + b,
                                    "raised"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
