"""Command line: ``featlab extract FOLDER --out feats.h5`` (also ``python -m featlab``).

Extracts pooled features of every picture in a folder, with a progress bar; run the same
command again after an interruption and it continues where it stopped.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="featlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="features of every picture in a folder -> HDF5 file")
    ex.add_argument("folder")
    ex.add_argument("--out", required=True, help="HDF5 file to write (resumed if it exists)")
    ex.add_argument("--model", default="efficientnet_lite0")
    ex.add_argument("--layers", default="head", help="comma-separated layer names or aliases")
    ex.add_argument("--pool", default="avg", choices=["avg", "max"])
    ex.add_argument("--batch-size", type=int, default=None, help="default: 32 on a GPU, 4 on a CPU")
    ex.add_argument("--no-progress", action="store_true")
    sub.add_parser("models", help="list models and whether their weights are on this machine")
    args = parser.parse_args(argv)

    from . import models
    from .cache import extract_folder

    if args.command == "models":
        have = set(models.available_models())
        for name in models.model_names():
            print(f"{name:20s} {'ready' if name in have else 'weights not on this machine'}")
        return 0
    try:
        model = models.load_model(args.model)
        summary = extract_folder(model, args.folder, args.layers.split(","), args.out,
                                 batch_size=args.batch_size, pooling=args.pool,
                                 progress=not args.no_progress)
    except (ValueError, OSError, models.WeightsUnavailableError) as e:
        print(f"featlab: error: {e}", file=sys.stderr)
        return 2
    for path, reason in summary["skipped"].items():
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"{summary['done']} new, {summary['total']} in {args.out}, {len(summary['skipped'])} skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
