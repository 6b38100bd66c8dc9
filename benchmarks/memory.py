"""Does `featlab extract` need more memory for more pictures? Peak resident memory, per folder size.

    python benchmarks/memory.py                 # 600 and 3,000 photos of 320×240
    python benchmarks/memory.py --n 600 3000 12000

For each size it writes a folder of JPEG files (the sample pictures, cropped to 4:3 and
re-encoded at 320×240, quality 90, repeated), runs `featlab extract` on it in a fresh
process with its defaults, and reports that process's peak resident memory (``ru_maxrss``
from ``wait4``), its speed and the feature file's size. Memory flat in the number of pictures
means the peaks agree within a few MB: the paths list and the set of stored paths grow by
about 100 bytes per picture, everything else (model copies, batches in flight, HDF5's chunk
cache, the journal of one commit) is bounded.
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import featlab as fl  # noqa: E402
from extract_speed import load_average  # noqa: E402


def write_jpegs(folder: Path, n: int, size=(320, 240)) -> None:
    from PIL import Image, ImageOps

    distinct = []
    for name in fl.sample_images():
        pic = ImageOps.fit(fl.load_image(name), size, Image.Resampling.LANCZOS)
        for flip in (False, True):
            buf = io.BytesIO()
            (ImageOps.mirror(pic) if flip else pic).save(buf, "JPEG", quality=90)
            distinct.append(buf.getvalue())
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{i:06d}.jpg").write_bytes(distinct[i % len(distinct)])


def run_extract(folder: Path, out: Path) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, last line of output) of one `featlab extract` process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "featlab.cli", "extract", str(folder), "--out", str(out), "--no-progress"]
    t = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        log.seek(0)
        text = log.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise SystemExit(f"featlab extract failed ({proc.returncode}):\n{text}")
    return usage.ru_maxrss / 1024, seconds, text.splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[600, 3000], help="folder sizes (pictures)")
    args = ap.parse_args()
    load = load_average()
    print(f"{os.cpu_count()} CPU cores, load average {load}; `featlab extract` with its defaults, 320×240 JPEGs")
    print(f"{'pictures':>9}  {'peak RSS MB':>11}  {'img/s':>7}  {'file MB':>7}")
    with tempfile.TemporaryDirectory(prefix="featlab_mem_") as tmp:
        peaks = []
        for n in args.n:
            folder, out = Path(tmp) / f"pics{n}", Path(tmp) / f"f{n}.h5"
            write_jpegs(folder, n)
            peak, seconds, _ = run_extract(folder, out)
            peaks.append(peak)
            print(f"{n:9d}  {peak:11.0f}  {n / seconds:7.1f}  {out.stat().st_size / 1e6:7.1f}", flush=True)
    load = load_average()
    print(f"load average at the end: {load}")
    print(" ".join(f"peak_mb_{n}={p:.0f}" for n, p in zip(args.n, peaks))
          + f" growth_mb={peaks[-1] - peaks[0]:.0f}")


if __name__ == "__main__":
    main()
