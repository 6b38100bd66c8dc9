"""How fast is fl.extract? Ratios measured in one run, on whatever device featlab picks.

    python benchmarks/extract_speed.py [--n 64] [--batch-sizes 1 4 32]

Compares, for the same pictures and layers:
  naive    - the per-image loop a first notebook writes (hook, full forward, one image at a time)
  forward  - the model's plain batched forward pass (no hooks): the floor for a deep layer
  extract  - fl.extract, batched, stopping after the deepest requested layer

Which batch size is fastest depends on the device: on a GPU large batches win by far; on a
small CPU, batches of a few pictures can beat large ones (activations stop fitting in cache).
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
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 32])
    args = ap.parse_args()
    torch.manual_seed(0)
    model = fl.load_model("efficientnet_lite0")
    names = list(fl.sample_images())
    x = fl.preprocess([names[i % len(names)] for i in range(args.n)], model)
    print(f"device {fl.device().type}, {torch.get_num_threads()} threads, {args.n} pictures 224×224, best of 3")
    print("naive = per-image loop with a hook and the full forward pass (batch 1 always)")

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

    def forward(bs):
        with torch.inference_mode():
            for chunk in x.split(bs):
                model(chunk)

    t_naive_by: dict[str, float] = {}

    print(f"{'batch':>5s} {'layer':7s} {'naive s':>8s} {'extract s':>9s} {'forward s':>9s} "
          f"{'naive/extract':>13s} {'extract/forward':>15s}")
    for bs in args.batch_sizes:
        t_forward = timed(lambda: forward(bs))
        for layer in ["block2", "block4", "head"]:
            t_naive = timed(lambda: naive(layer), repeat=1) if bs == args.batch_sizes[0] else t_naive_by[layer]
            t_naive_by[layer] = t_naive
            t_ours = timed(lambda: fl.extract(model, x, layer, batch_size=bs))
            print(f"{bs:5d} {layer:7s} {t_naive:8.3f} {t_ours:9.3f} {t_forward:9.3f} "
                  f"{t_naive / t_ours:12.2f}× {t_ours / t_forward:14.2f}×")


if __name__ == "__main__":
    main()
