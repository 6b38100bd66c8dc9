"""Command line: ``featlab extract FOLDER --out feats.h5`` (also ``python -m featlab``).

``featlab search feats.h5 query.jpg -k 5`` lists the stored pictures most like each query.

``featlab grade SUBMISSIONS_DIR --out grades.csv`` runs every student's exercise notebooks and
records each check (``featlab/grade.py``).

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
    ex.add_argument("--batch-size", type=_positive_int, default=None, help="default: 256 on a GPU; on a CPU 4 per torch thread of a stream (4 on 2 cores)")
    ex.add_argument("--workers", type=_workers, default=None,
                    help="decoding threads feeding one model (default: 8 beside a GPU, half the cores on a "
                         "CPU); not used with --streams above 1")
    ex.add_argument("--streams", type=_positive_int, default=None,
                    help="CPU: pipelines side by side, each with its own copy of the model and its share of "
                         "the cores, reading its own batches (default: 2 on 2 cores or more; 1 on a GPU)")
    ex.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                    help="storage type of the features (float16: half the size)")
    ex.add_argument("--device", default=None, choices=["cpu", "cuda"],
                    help="default: $FEATLAB_DEVICE, else cuda if present, else cpu")
    ex.add_argument("--precision", default=None, choices=["float32", "bfloat16"],
                    help="compute precision (default: bfloat16 on cuda, float32 on cpu; bfloat16 on a CPU "
                         "with native bf16 (avx512_bf16, AMX) is several times faster, cosine > 0.99 to float32)")
    ex.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="NHWC memory layout (default: on; faster on an H100 and on a 2-core CPU, measured)")
    ex.add_argument("--fast-decode", action="store_true",
                    help="decode large JPEGs at reduced scale (Pillow draft mode): faster on a CPU, "
                         "features within cosine 0.99 of the exact decode")
    ex.add_argument("--retry-skipped", action="store_true",
                    help="try again the pictures earlier runs could not read")
    ex.add_argument("--no-progress", action="store_true")
    se = sub.add_parser("search", help="stored pictures most similar to query pictures (cosine)")
    se.add_argument("features", help="HDF5 file written by featlab extract")
    se.add_argument("queries", nargs="+", help="query picture files")
    se.add_argument("-k", type=_positive_int, default=5, help="hits per query (default 5)")
    se.add_argument("--layer", default=None, help="stored layer to search (default: the only one)")
    se.add_argument("--backend", default="torch", choices=["torch", "faiss"],
                    help="faiss needs: pip install featlab[search]")
    sub.add_parser("models", help="list models and whether their weights are on this machine")
    gr = sub.add_parser("grade", help="run students' exercise notebooks; one CSV row per check")
    gr.add_argument("submissions", help="one folder per student (or STUDENT__NN_name.ipynb files)")
    gr.add_argument("--out", default="grades.csv", help="CSV to write (default grades.csv)")
    gr.add_argument("--timeout", type=_positive_int, default=120,
                    help="seconds per notebook; the kernel is killed after (default 120)")
    gr.add_argument("--reference", default=None,
                    help="folder of the reference exercises (default: the course's exercises/)")
    gr.add_argument("--workers", type=_positive_int, default=1, help="notebooks run at once (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "grade":
        return _grade(args)

    from . import models
    from .cache import extract_folder

    if args.command == "models":
        have = set(models.available_models())
        for name in models.model_names():
            print(f"{name:20s} {'ready' if name in have else 'weights not on this machine'}")
        return 0
    if args.command == "search":
        return _search(args)
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
                                 retry_skipped=args.retry_skipped, channels_last=args.channels_last,
                                 fast_decode=args.fast_decode, streams=args.streams)
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


def _query_features(file: str, attrs: dict, layer: str, queries: list[str]):
    """(Q, D) features of the query pictures, computed as ``extract_folder`` stored ``layer``:
    the file's model, pooling and preprocessing; device per $FEATLAB_DEVICE."""
    from pathlib import Path

    from . import images, models
    from .embed import pool
    from .extract import extract

    name, how, prep = attrs.get("model"), attrs.get("pool", "avg"), attrs.get("preprocess")
    if name is None:
        raise ValueError(f"'{file}' does not record its model; re-extract it with `featlab extract`.")
    model = models.load_model(str(name))
    if prep is not None and str(prep) != repr(models.preprocess_for(model)):
        raise ValueError(f"'{file}' was made with other preprocessing ({prep}) than this featlab's "
                         f"({models.preprocess_for(model)!r}); re-extract it.")
    pictures = [images.load_image(Path(q)) for q in queries]  # the error names an unreadable one
    f = extract(model, pictures, layer)[layer]
    return pool(f.float(), str(how)).reshape(len(pictures), -1).cpu()


def _search(args) -> int:
    from . import models
    from .store import open_features
    from .search import search_file

    try:
        with open_features(args.features) as ff:
            layer, attrs = ff.layer(args.layer), ff.attrs
        q = _query_features(args.features, attrs, layer, args.queries)
        scores, _, hits = search_file(args.features, q, layer=layer, k=args.k, backend=args.backend)
    except (ValueError, OSError, ImportError, models.WeightsUnavailableError) as e:
        print(f"featlab: error: {e}", file=sys.stderr)
        return 2
    for query, row_s, row_p in zip(args.queries, scores, hits):
        print(f"query {query}")
        print(f"{'rank':>4}  {'score':>7}  path")
        for rank, (s, p) in enumerate(zip(row_s, row_p), 1):
            print(f"{rank:>4}  {s:7.4f}  {p}")
        print()
    return 0


def _grade(args) -> int:
    import time

    from . import grade

    t0 = time.monotonic()
    try:
        rows = grade.grade_folder(args.submissions, args.reference, timeout=args.timeout,
                                  workers=args.workers, log=lambda line: print(line, file=sys.stderr))
        grade.write_csv(rows, args.out)
    except (ValueError, OSError, ImportError) as e:
        print(f"featlab: error: {e}", file=sys.stderr)
        return 2
    print(grade.summary(rows, time.monotonic() - t0), end="")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
