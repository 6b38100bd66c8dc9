"""JPEG decoders for the CPU loader: speed and pixels against Pillow's exact decode.

    python benchmarks/decoders.py            # 7 interleaved rounds over the benchmark's 24 distinct files

Each decoder turns a file into the (3, crop, crop) uint8 pixels of ``Preprocess.to_uint8``
(decode, resize the short side to 256 bicubic, centre crop 224): Pillow exact (featlab's
default), Pillow draft mode (``--fast-decode``: libjpeg's DCT scaling to 1/2, 1/4 or 1/8,
sides >= 256), and, if installed, simplejpeg (libjpeg-turbo; releases the GIL) exact and
at reduced scale (``min_height=min_width=256``, ``min_factor=2``: it may pick scales such as
3/8, beyond Pillow's). Rates on one thread and on two (ThreadPoolExecutor), median [lowest –
highest] over the rounds; differences in pixel values (of 255) against Pillow exact.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import featlab as fl  # noqa: E402
from extract_speed import load_average, write_jpegs  # noqa: E402


def decoders(prep: fl.Preprocess) -> dict:
    out = {"pillow": lambda p: prep.to_uint8(p), "pillow_draft": lambda p: prep.to_uint8(p, draft=True)}
    try:
        import simplejpeg
    except ImportError:
        print("simplejpeg is not installed: its rows are left out (pip install simplejpeg)")
        return out

    def sj(p, **kw):
        with open(p, "rb") as fh:
            data = fh.read()
        return prep.to_uint8(Image.fromarray(simplejpeg.decode_jpeg(data, "RGB", **kw)))

    out["simplejpeg"] = sj
    out["simplejpeg_scaled"] = lambda p: sj(p, min_height=prep.resize, min_width=prep.resize, min_factor=2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    prep = fl.preprocess_for("efficientnet_lite0")
    print(f"load average {load_average()}")
    with tempfile.TemporaryDirectory(prefix="featlab_dec_") as tmp:
        files = write_jpegs(Path(tmp), 24)  # 640×480 and 1024×768 alternating
        fns = decoders(prep)
        ref = [prep.to_uint8(p) for p in files]
        diffs = {}
        for name, fn in fns.items():
            d = np.concatenate([(fn(p).int() - r.int()).abs().numpy().ravel() for p, r in zip(files, ref)])
            diffs[name] = (d.mean(), d.max())
        torch.set_num_threads(1)
        rates = {k: {1: [], 2: []} for k in fns}
        work = files * 3
        for r in range(args.rounds):
            names = list(fns)
            for name in names[r % len(names):] + names[:r % len(names)]:
                fn = fns[name]
                t = time.perf_counter()
                for p in work:
                    fn(p)
                rates[name][1].append(len(work) / (time.perf_counter() - t))
                with ThreadPoolExecutor(2) as pool:
                    t = time.perf_counter()
                    list(pool.map(fn, work))
                    rates[name][2].append(len(work) / (time.perf_counter() - t))
    print(f"{'decoder':18s} {'1 thread img/s':>22s} {'2 threads img/s':>22s}  mean|diff|  max|diff|")
    for name in fns:
        a, b = (np.array(rates[name][k]) for k in (1, 2))
        print(f"{name:18s} {np.median(a):7.1f} [{a.min():5.1f} – {a.max():5.1f}] {np.median(b):7.1f} "
              f"[{b.min():5.1f} – {b.max():5.1f}]  {diffs[name][0]:9.3f}  {diffs[name][1]:9d}")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
