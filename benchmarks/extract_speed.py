"""How fast is fl.extract? Ratios measured in one run, on whatever device featlab picks.

    python benchmarks/extract_speed.py [--n 64] [--batch-size 32]

Compares, for the same pictures and layers:
  naive    - the per-image loop a first notebook writes (hook, full forward, one image at a time)
  forward  - the model's plain batched forward pass (no hooks): the floor for a deep layer
  extract  - fl.extract, batched, stopping after the deepest requested layer
"""
from __future__ import annotations

import argparse
import time

import torch

import featlab as fl


def timed(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = fl.load_model("efficientnet_lite0")
    names = list(fl.sample_images())
    x = fl.preprocess([names[i % len(names)] for i in range(args.n)], model)
    print(f"device {fl.device().type}, {args.n} pictures 224×224, batch {args.batch_size}, best of 3")

    def naive(layer):
        module = dict(model.named_modules())[fl.resolve_layer(model, layer)]
        out = []
        for i in range(len(x)):
            kept = {}
            h = module.register_forward_hook(lambda m, inp, o: kept.update(o=o.clone()))
            with torch.no_grad():
                model(x[i:i + 1])
            h.remove()
            out.append(kept["o"])
        return torch.cat(out)

    def forward():
        with torch.inference_mode():
            for chunk in x.split(args.batch_size):
                model(chunk)

    t_forward = timed(forward)
    print(f"{'layer':8s} {'naive s':>8s} {'extract s':>9s} {'naive/extract':>14s} {'extract/forward':>16s}")
    for layer in ["block2", "block4", "head"]:
        t_naive = timed(lambda: naive(layer), repeat=1)
        t_ours = timed(lambda: fl.extract(model, x, layer, batch_size=args.batch_size))
        print(f"{layer:8s} {t_naive:8.3f} {t_ours:9.3f} {t_naive / t_ours:13.1f}× {t_ours / t_forward:15.2f}×")
    print(f"forward-only: {t_forward:.3f} s for {args.n} pictures")


if __name__ == "__main__":
    main()
