"""Command line: ``featlab extract FOLDER --out feats.h5`` (also ``python -m featlab``).

Extracts pooled features of every picture in a folder, with a progress bar (images/s) and a
summary line; run the same command again after an interruption and it continues where it
stopped. Pictures that cannot be read are skipped, recorded in the file with their reason,
and not retried by later runs unless ``--retry-skipped``.
"""
from __future__ import annotations

import argparse
import sys


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1; got {text!r}")
    return n


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0 (0 = decode in the main thread); got {text!r}")
    return n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="featlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="features of every picture in a folder -> HDF5 file")
    ex.add_argument("folder")
    ex.add_argument("--out", required=True, help="HDF5 file to write (resumed if it exists)")
    ex.add_argument("--model", default="efficientnet_lite0")
    ex.add_argument("--layers", default="head", help="comma-separated layer names or aliases")
    ex.add_argument("--pool", default="avg", choices=["avg", "max", "none"],
                    help="how maps become vectors (none = flattened)")
    ex.add_argument("--batch-size", type=_positive_int, default=None, help="default: 256 on a GPU, 16 on a CPU")
    ex.add_argument("--workers", type=_workers, default=None,
                    help="decoding threads (default: 8 beside a GPU, half the cores on a CPU)")
    ex.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                    help="storage type of the features (float16: half the size)")
    ex.add_argument("--device", default=None, choices=["cpu", "cuda"],
                    help="default: $FEATLAB_DEVICE, else cuda if present, else cpu")
    ex.add_argument("--precision", default=None, choices=["float32", "bfloat16"],
                    help="compute precision (default: bfloat16 on cuda, float32 on cpu)")
    ex.add_argument("--retry-skipped", action="store_true",
                    help="try again the pictures earlier runs could not read")
    ex.add_argument("--no-progress", action="store_true")
    sub.add_parser("models", help="list models and whether their weights are on this machine")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    from . import models
    from .cache import extract_folder

    if args.command == "models":
        have = set(models.available_models())
        for name in models.model_names():
            print(f"{name:20s} {'ready' if name in have else 'weights not on this machine'}")
        return 0
    try:
        if args.device == "cuda":
            import torch
            if not torch.cuda.is_available():
                raise ValueError("--device cuda, but PyTorch sees no CUDA GPU here "
                                 "(torch.cuda.is_available() is False). Use --device cpu.")
        model = models.load_model(args.model, device=args.device)
        summary = extract_folder(model, args.folder, args.layers.split(","), args.out,
                                 batch_size=args.batch_size, pooling=args.pool,
                                 progress=not args.no_progress, workers=args.workers,
                                 dtype=args.dtype, precision=args.precision,
                                 retry_skipped=args.retry_skipped)
    except (ValueError, OSError, models.WeightsUnavailableError) as e:
        print(f"featlab: error: {e}", file=sys.stderr)
        return 2
    for path, reason in summary["skipped"].items():
        print(f"skipped {path}: {reason}", file=sys.stderr)
    earlier = summary["skipped_earlier"]
    note = f" ({earlier} skipped by earlier runs, not retried: --retry-skipped)" if earlier else ""
    print(f"{summary['done']} new, {summary['total']} total, {len(summary['skipped'])} skipped{note}, "
          f"{summary['seconds']:.1f} s, {summary['images_per_s']:.1f} images/s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
