# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 10 — The Fréchet distance between two sets of features
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/10_feature_distance.ipynb`. Fill in each `TODO`, run the cell, then run the
# check below it: it prints ✓ when your function is right, and says what is wrong when it is not.
#
# A set of feature vectors is a NumPy array `features` of shape (N, D): N samples (one per picture),
# D dimensions. The Fréchet distance between two sets fits a Gaussian to each and compares them:
#
# $$d^2 = \|\mu_a-\mu_b\|^2 + \mathrm{Tr}\Big(\Sigma_a+\Sigma_b-2\,(\Sigma_a\Sigma_b)^{1/2}\Big).$$

# %%
import numpy as np
import scipy.linalg
import torch

import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. Mean and covariance of a feature set
#
# `mean_and_cov(features)` returns `(mu, cov)`: the mean over the samples, shape (D,), and the
# covariance matrix, shape (D, D), **unbiased** — divided by N − 1, as `np.cov` does. Careful:
# `np.cov` treats each *row* as a variable unless told otherwise.

# %%
def mean_and_cov(features):
    ### BEGIN SOLUTION
    return features.mean(axis=0), np.cov(features, rowvar=False)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_mean_and_cov(mean_and_cov)


# %% [markdown]
# ## 2. The mean term
#
# `mean_term(mu_a, mu_b)` returns $\|\mu_a-\mu_b\|^2$, one number.

# %%
def mean_term(mu_a, mu_b):
    ### BEGIN SOLUTION
    return float(((mu_a - mu_b) ** 2).sum())
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_mean_term(mean_term)


# %% [markdown]
# ## 3. The Fréchet distance from means and covariances
#
# `frechet_from_stats(mu_a, cov_a, mu_b, cov_b)` returns $d^2$, one number. Use `mean_term` and
# `scipy.linalg.sqrtm` for the matrix square root of the **product** $\Sigma_a\Sigma_b$. `sqrtm`
# may return a complex matrix with tiny imaginary parts: keep the real part. The check uses
# covariances that do not commute, so $\Sigma_a^{1/2}\Sigma_b^{1/2}$ will not do.

# %%
def frechet_from_stats(mu_a, cov_a, mu_b, cov_b):
    ### BEGIN SOLUTION
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return mean_term(mu_a, mu_b) + float(np.trace(cov_a + cov_b - 2 * root))
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_frechet_from_stats(frechet_from_stats)


# %% [markdown]
# ## 4. The 1-D closed form
#
# For two 1-D Gaussians with means $\mu_a, \mu_b$ and **standard deviations** $\sigma_a, \sigma_b$
# the distance is $(\mu_a-\mu_b)^2 + (\sigma_a-\sigma_b)^2$. Write `frechet_1d(mu_a, sigma_a, mu_b, sigma_b)`.

# %%
def frechet_1d(mu_a, sigma_a, mu_b, sigma_b):
    ### BEGIN SOLUTION
    return (mu_a - mu_b) ** 2 + (sigma_a - sigma_b) ** 2
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_frechet_1d(frechet_1d)

# %% [markdown]
# ## 5. Use them on the real network
#
# Two sets of 128 random 80×80 crops of the colour sample pictures (A and B), and B with Gaussian
# noise (σ = 16 grey levels). Features: `block4` of EfficientNet-Lite0 (80 channels, fewer than the
# 128 samples), global-average-pooled, *not* L2-normalised. Does your distance match
# `fl.frechet_distance`, and is the noisy set further from A than B is? Then take a single
# feature: do your 1-D closed form and your matrix version agree?

# %%
from PIL import Image

model = fl.load_model("efficientnet_lite0")
rng = np.random.default_rng(0)
pictures = [fl.load_image(n) for n in ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"]]

def random_crops(n):
    """n random square crops (128-256 px) resized to 80x80: (80, 80, 3) uint8 arrays."""
    out = []
    for _ in range(n):
        im = pictures[rng.integers(len(pictures))]
        s = int(rng.integers(128, 257))
        left, top = int(rng.integers(0, im.size[0] - s + 1)), int(rng.integers(0, im.size[1] - s + 1))
        out.append(np.array(im.crop((left, top, left + s, top + s)).resize((80, 80), Image.BICUBIC)))
    return out

prep = fl.preprocess_for(model)
mean, std = torch.tensor(prep.mean).view(1, 3, 1, 1), torch.tensor(prep.std).view(1, 3, 1, 1)

def features(arrays):
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    x = ((x - mean) / std).to(fl.device())
    return fl.embed(model, x, "block4", normalize=False)["block4"].cpu().double().numpy()   # (N, 80)

real_a, real_b = random_crops(128), random_crops(128)
noisy_b = [np.clip(a + rng.normal(0, 16, a.shape), 0, 255).round().astype(np.uint8) for a in real_b]
fa, fb, fn = features(real_a), features(real_b), features(noisy_b)

stats_a = mean_and_cov(fa)
if stats_a is None:
    print("Fill in mean_and_cov (and the functions after it) first.")
else:
    for name, f in [("real B", fb), ("noisy B", fn)]:
        yours = frechet_from_stats(*stats_a, *mean_and_cov(f))
        if yours is not None:
            print(f"real A vs {name:8s} yours {yours:8.2f}   fl.frechet_distance {fl.frechet_distance(fa, f):8.2f}")
    one_a, one_b = fa[:, :1], fn[:, :1]                            # feature 0 alone: (N, 1)
    closed = frechet_1d(one_a.mean(), one_a.std(ddof=1), one_b.mean(), one_b.std(ddof=1))
    matrix = frechet_from_stats(one_a.mean(0), np.atleast_2d(np.cov(one_a[:, 0])),
                                one_b.mean(0), np.atleast_2d(np.cov(one_b[:, 0])))
    if closed is not None and matrix is not None:
        print(f"feature 0 alone, real A vs noisy B: 1-D closed form {closed:.4f}, 1x1 matrices {matrix:.4f}")
