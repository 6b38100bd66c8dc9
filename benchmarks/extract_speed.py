"""How fast does `featlab extract` turn a folder of JPEG files into features? Ratios, with their spread.

    python benchmarks/extract_speed.py                                  # CPU: efficientnet_lite0, 96 files, 15 rounds
    python benchmarks/extract_speed.py --device cuda --model resnet50 --n 16384 --batch-size 256 --rounds 3

It writes a folder of JPEGs (the sample pictures, cropped to 4:3 and re-encoded at typical
photo sizes, 640×480 and 1024×768, quality 90; the distinct files are repeated up to --n),
then measures, for the same pictures and the same layer (the pooled head: Lite0's ``head``,
ResNet's ``layer4``, average-pooled):

  naive    the per-image loop of the lessons: PIL open -> torchvision transform ->
           model(x.unsqueeze(0)) with a hook -> .cpu().numpy(); float32, the model as
           fl.load_model returns it (batch norms unfolded, NCHW), PyTorch's threads, on the
           first --naive-n files (default: all of them), same mix of sizes
  extract  fl.extract_folder end to end from the files to the HDF5 file (what
           `featlab extract` runs): threads decode, uint8 to the device, normalise there,
           channels_last; bf16 + nvJPEG on CUDA; on a CPU, --streams pipelines side by side
  forward  the forward pass alone on pre-decoded, normalised batches already on the device,
           same batch size, precision, layout and layer (fl.FeatureExtractor, as extract
           runs it: its copy of the model, batch norms folded), one batch after another with
           PyTorch's threads (what a user's loop does)
  forward, streams   (CPU, when extract runs --streams > 1) the same batches in extract's
           layout: that many threads, each with its own copy of the model and its share of
           the cores — the ceiling for extract in that layout (diagnostic)

Stable figures on a machine whose speed drifts: one untimed round first (threads, cuDNN
autotuning, every file read once into the OS page cache, so all measurements read warm
files), then --rounds rounds, each timing every measurement once, back to back, in an order
that rotates from round to round, with Python's garbage collected before each. Each ratio is
computed within a round (extract and the measure it is compared with saw the same load) and
the script prints every round, then the median over rounds with the spread (lowest –
highest), and the load average at the start and the end. The last line is machine-readable:
medians, then the spreads.
"""
from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import featlab as fl  # noqa: E402
from featlab import loader  # noqa: E402

SIZES = [(640, 480), (1024, 768)]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, to tell a run on a busy machine ("?" where unknown)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_jpegs(folder: Path, n: int) -> list[Path]:
    """n JPEG files: every sample picture at each size (and mirrored), repeated up to n."""
    from PIL import Image, ImageOps

    by_size: dict[tuple[int, int], list[bytes]] = {size: [] for size in SIZES}
    for name in fl.sample_images():
        img = fl.load_image(name)
        for size in SIZES:
            pic = ImageOps.fit(img, size, Image.Resampling.LANCZOS)
            for flip in (False, True):
                buf = io.BytesIO()
                (ImageOps.mirror(pic) if flip else pic).save(buf, "JPEG", quality=90)
                by_size[size].append(buf.getvalue())
    # sizes alternate, so any prefix of the files (the naive subset) has the same mix
    distinct = [d for pair in zip(*by_size.values()) for d in pair]
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(n)]
    for i, p in enumerate(paths):
        p.write_bytes(distinct[i % len(distinct)])
    return paths


def naive(model, files, layer, prep, device) -> tuple[float, np.ndarray]:
    """The lessons' loop, one picture at a time. Returns (seconds, (n, D) features)."""
    from PIL import Image
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(prep.resize, interpolation=T.InterpolationMode(prep.interpolation)),
                    T.CenterCrop(prep.crop), T.ToTensor(), T.Normalize(prep.mean, prep.std)])
    module = dict(model.named_modules())[fl.resolve_layer(model, layer)]
    kept = {}
    hook = module.register_forward_hook(lambda m, i, o: kept.update(out=o))
    try:
        def one(path):
            x = tf(Image.open(path).convert("RGB")).to(device)
            with torch.no_grad():
                model(x.unsqueeze(0))
            return kept["out"].mean(dim=(2, 3)).cpu().numpy()[0]

        for p in files[:3]:
            one(p)  # warm-up
        t = time.perf_counter()
        feats = np.stack([one(p) for p in files])
        return time.perf_counter() - t, feats
    finally:
        hook.remove()


def predecoded(files, prep, device, batch_size, workers, channels_last) -> list[torch.Tensor]:
    """The files as normalised (B, 3, crop, crop) batches on the device, decoded beforehand."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        pixels = list(pool.map(lambda p: loader.to_uint8(p, prep), files))
    return [loader.normalize(torch.stack(pixels[i:i + batch_size]).to(device), prep, channels_last)
            for i in range(0, len(pixels), batch_size)]


def forward_seconds(extractor, batches, device) -> float:
    """Seconds for the forward pass (+ pooling) over ready batches, as extract runs it."""
    sync(device)
    t = time.perf_counter()
    for x in batches:
        extractor(x)
    sync(device)
    return time.perf_counter() - t


def forward_streams_seconds(extractors, batches) -> float:
    """Seconds for the forward pass over ready batches in extract's CPU layout: one thread per
    extractor (each with its own copy of the model), cores // streams PyTorch threads each."""
    streams = len(extractors)
    threads = max(1, loader._cores() // streams)
    before = torch.get_num_threads()

    def run(k: int) -> None:
        torch.set_num_threads(threads)
        for x in batches[k::streams]:
            extractors[k](x)

    try:
        t = time.perf_counter()
        with ThreadPoolExecutor(streams) as pool:
            list(pool.map(run, range(streams)))
        return time.perf_counter() - t
    finally:
        torch.set_num_threads(before)


def spread(values) -> str:
    """median [lowest – highest]"""
    v = np.asarray(values, dtype=float)
    return f"{np.median(v):.2f} [{v.min():.2f} – {v.max():.2f}]"


def loader_only(folder, rels, prep, device, batch_size, workers, channels_last, fast_decode) -> float:
    """Seconds to read, decode and normalise every file onto the device, without the model."""
    t = time.perf_counter()
    for _ in loader.load_batches(folder, rels, prep, batch_size, device, workers, None, channels_last,
                                 fast_decode):
        pass
    sync(device)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0", choices=fl.model_names())
    ap.add_argument("--layer", default=None, help="default: head (Lite0), layer4 (ResNet)")
    ap.add_argument("--n", type=int, default=96, help="JPEG files in the folder (each round reads them all)")
    ap.add_argument("--naive-n", type=int, default=None, help="files the naive loop reads (default: all, at most 512)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: extract_folder's (256 GPU; 4 on a 2-core CPU)")
    ap.add_argument("--workers", type=int, default=None, help="decoding threads (default: featlab's)")
    ap.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: fl.device()")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="storage dtype")
    ap.add_argument("--precision", default=None, choices=["float32", "bfloat16"],
                    help="default: bfloat16 on cuda, float32 on cpu")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="default: on (extract_folder's default)")
    ap.add_argument("--fast-decode", action="store_true",
                    help="extract_folder(fast_decode=True): large JPEGs decoded at reduced scale (CPU)")
    ap.add_argument("--streams", type=int, default=None,
                    help="extract_folder(streams=): CPU pipelines side by side (default: featlab's, 2 on >= 2 cores)")
    ap.add_argument("--random-weights", action="store_true", help="skip pretrained weights (speed is the same)")
    ap.add_argument("--loader-workers", type=int, nargs="*", default=None,
                    help="also time the loader alone with these thread counts (diagnostic)")
    ap.add_argument("--rounds", type=int, default=15,
                    help="timed rounds, each measuring naive, extract and forward once (median reported)")
    ap.add_argument("--folder", default=None, help="where to write the JPEGs (default: a temporary folder)")
    args = ap.parse_args()

    device = torch.device(args.device) if args.device else fl.device()
    on_cuda = device.type == "cuda"
    precision = args.precision or ("bfloat16" if on_cuda else "float32")
    channels_last = True if args.channels_last is None else args.channels_last
    workers = loader.default_workers(device) if args.workers is None else args.workers
    streams = loader.default_streams(device) if args.streams is None else args.streams
    batch_size = args.batch_size or loader.default_batch_size(device, streams)
    layer = args.layer or ("head" if args.model == "efficientnet_lite0" else "layer4")
    torch.manual_seed(0)
    pretrained = not args.random_weights and args.model in fl.available_models()
    model = fl.load_model(args.model, pretrained=pretrained, device=device)
    prep = fl.preprocess_for(model)

    hw = torch.cuda.get_device_name(device) if on_cuda else platform.processor() or platform.machine()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = load_start = load_average()
    print(f"device {device.type} ({hw}), {cores} CPU cores, load average {load}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    feeding = (f"{streams} streams (one model copy and {max(1, cores // streams)} torch threads each, "
               "decoding its own batches)" if streams > 1 else f"{workers} decode threads")
    print(f"model {args.model} ({'pretrained' if pretrained else 'RANDOM-INIT weights: speed only, features meaningless'}), "
          f"layer {layer} avg-pooled, batch {batch_size}, {precision}, channels_last={channels_last}, {feeding}"
          f"{' (fast_decode)' if args.fast_decode else ''}, storage {args.dtype}")

    tmp = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="featlab_bench_"))
    try:
        folder = tmp / "jpegs"
        t = time.perf_counter()
        files = write_jpegs(folder, args.n)
        rels = [p.name for p in files]
        mb = sum(p.stat().st_size for p in files[:48]) / min(48, len(files)) / 1e3
        print(f"{args.n} JPEG files, 640×480 and 1024×768 alternating, {mb:.0f} kB on average "
              f"(written in {time.perf_counter() - t:.1f} s)")

        naive_n = min(args.n, args.naive_n or args.n)
        warm = tmp / "warm"  # files for the untimed run: threads, cuDNN autotuning, nvJPEG start-up
        warm.mkdir()
        for p in files[:2 * batch_size]:
            shutil.copy(p, warm / p.name)
        kw = dict(batch_size=batch_size, progress=False, workers=workers, dtype=args.dtype,
                  precision=precision, channels_last=channels_last, fast_decode=args.fast_decode,
                  streams=streams)
        extractor = fl.FeatureExtractor(model, [layer], "avg", precision=precision, channels_last=channels_last,
                                        fold=True)  # as extract runs it
        print(f"featlab's copy of the model: {extractor.folded} batch norms folded into their convolutions "
              "(the naive loop runs the model as loaded)")
        replicas = [extractor] + [extractor.replica() for _ in range(streams - 1)]
        batches = predecoded(files, prep, device, batch_size, workers, extractor.channels_last)
        last: dict = {}

        def run_naive() -> float:
            t, last["naive"] = naive(model, files[:naive_n], layer, prep, device)
            return naive_n / t

        def run_extract() -> float:
            out = tmp / "run.h5"
            out.unlink(missing_ok=True)
            t = time.perf_counter()
            summary = fl.extract_folder(model, folder, layer, out, **kw)
            t = time.perf_counter() - t
            assert summary["done"] == args.n, summary
            last["extract"] = fl.load_features(out)
            return args.n / t

        measures = {"naive": run_naive, "extract": run_extract,
                    "forward": lambda: args.n / forward_seconds(extractor, batches, device)}
        if streams > 1:
            measures["forward_streams"] = lambda: args.n / forward_streams_seconds(replicas, batches)
        fl.extract_folder(model, warm, layer, tmp / "warm.h5", **kw)  # the untimed round
        for fn in measures.values():
            fn()
        rates: dict[str, list[float]] = {k: [] for k in measures}
        names = list(measures)
        short = {"naive": "naive", "extract": "extract", "forward": "forward", "forward_streams": "fwd_streams"}
        print(f"round  {'  '.join(f'{short[k]:>11s}' for k in names)}   vs_naive  vs_forward   (img/s)")
        for r in range(args.rounds):
            for k in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
                gc.collect()
                rates[k].append(measures[k]())
            print(f"{r + 1:5d}  {'  '.join(f'{rates[k][-1]:11.1f}' for k in names)}   "
                  f"{rates['extract'][-1] / rates['naive'][-1]:8.2f}  {rates['extract'][-1] / rates['forward'][-1]:10.2f}",
                  flush=True)
        del batches
        rates = {k: np.array(v) for k, v in rates.items()}
        vs_naive, vs_forward = rates["extract"] / rates["naive"], rates["extract"] / rates["forward"]
        print(f"{args.rounds} rounds, img/s: median [lowest – highest]")
        print(f"naive    {naive_n:6d} files  {spread(rates['naive'])}")
        print(f"extract  {args.n:6d} files  {spread(rates['extract'])}")
        print(f"forward  {args.n:6d} imgs   {spread(rates['forward'])}   (pre-decoded, on the device)")
        if streams > 1:
            print(f"forward, {streams} streams      {spread(rates['forward_streams'])}   (pre-decoded, extract's "
                  f"layout); extract / this: {spread(rates['extract'] / rates['forward_streams'])}")
        print(f"ratio_vs_naive   {spread(vs_naive)}   (extract / naive, within each round)")
        print(f"ratio_vs_forward {spread(vs_forward)}   (extract / forward, within each round)")

        paths, feats = last["extract"]
        mine = feats[layer][[paths.index(p.name) for p in files[:naive_n]]].astype(np.float64)
        f_naive = last["naive"]
        cos = (mine * f_naive).sum(1) / np.linalg.norm(mine, axis=1) / np.linalg.norm(f_naive, axis=1)
        print(f"agreement extract vs naive: cosine min {cos.min():.5f}, mean {cos.mean():.5f}")

        for w in args.loader_workers or []:
            t_load = loader_only(folder, rels, prep, device, batch_size, w, channels_last, args.fast_decode)
            print(f"loader   {args.n:6d} files {t_load:8.2f} s {args.n / t_load:10.1f} img/s   "
                  f"(read + decode + resize + normalise onto the device, no model; {w} threads)")
        load = load_average()
        print(f"load average at the end: {load}")
        med = {k: float(np.median(v)) for k, v in rates.items()}
        print(f"naive_img_s={med['naive']:.1f} extract_img_s={med['extract']:.1f} forward_img_s={med['forward']:.1f} "
              f"ratio_vs_naive={np.median(vs_naive):.2f} ratio_vs_forward={np.median(vs_forward):.2f} "
              f"spread_vs_naive={vs_naive.max() - vs_naive.min():.2f} "
              f"spread_vs_forward={vs_forward.max() - vs_forward.min():.2f} rounds={args.rounds} "
              f"load_start={load_start.replace(' ', '/')} load_end={load.replace(' ', '/')}")
    finally:
        if not args.folder:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
