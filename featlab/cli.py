"""Command line: ``featlab extract FOLDER --out feats.h5`` (also ``python -m featlab``).

``featlab search feats.h5 query.jpg -k 5`` lists the stored pictures most like each query.

``featlab grade SUBMISSIONS_DIR --out grades.csv`` runs every student's exercise notebooks within
limits, records each check, and writes feedback pages and a class summary (docs/grading.md).

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


def _size(option: str):
    def parse(text: str) -> int:
        from .grade_kernel import parse_size
        try:
            return parse_size(text, option)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


_GRADE_EPILOG = """\
the whole workflow on a small example class:
  featlab grade --example demo                     # demo/submissions/{ada,bob,cyd,tom}/01_...ipynb
  featlab grade demo/submissions --out demo/grades.csv --workers 2
  # demo/grades.csv                  one row per check: student, exercise, check, status, points, ...
  # demo/grades-report/feedback/     one page per student: every check, its message, what to read next
  # demo/grades-report/totals.csv    points per student and exercise
  # demo/grades-report/summary.html  which checks fail most, with counts, a chart and common messages

statuses: pass | fail (the answer is not right yet) | error (an exception, a limit hit, an edited
check cell) | missing (no notebook, check cell deleted) | not-run (the notebook stopped before it)
"""


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
    ex.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
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
    se.add_argument("--html", default=None, metavar="FILE",
                    help="also write a contact sheet: hits, scores and similarity maps, one offline HTML file")
    se.add_argument("--png", default=None, metavar="FILE", help="also write the contact sheet as one PNG")
    se.add_argument("--root", default=None, help="folder the file's picture paths are relative to, for "
                                                 "--html/--png (default: the folder the file was extracted "
                                                 "from, as it records it)")
    sub.add_parser("models", help="list models and whether their weights are on this machine")
    gr = sub.add_parser(
        "grade", help="run students' exercise notebooks; one CSV row per check, feedback, class summary",
        description="Run every student's exercise notebooks headless, each check cell replaced by\n"
                    "the exercise's own, within time, memory, process and file-size limits; write one\n"
                    "CSV row per check, a feedback page per student, points per student and a class\n"
                    "summary (docs/grading.md).",
        epilog=_GRADE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    gr.add_argument("submissions", nargs="?",
                    help="one folder per student (or STUDENT__NN_name.ipynb files)")
    gr.add_argument("--out", default="grades.csv", help="CSV to write, one row per check (default grades.csv)")
    gr.add_argument("--report", default=None, metavar="DIR",
                    help="folder for feedback/STUDENT.html, totals.csv, summary.html and summary.png "
                         "(default: grades-report/ beside --out)")
    gr.add_argument("--timeout", type=_positive_int, default=120,
                    help="seconds per notebook; the kernel is killed after (default 120)")
    gr.add_argument("--memory", type=_size("--memory"), default="4G",
                    help="resident memory per notebook, its kernel and child processes together (default 4G)")
    gr.add_argument("--processes", type=_positive_int, default=32,
                    help="processes per notebook at once, the kernel included (default 32)")
    gr.add_argument("--file-size", type=_size("--file-size"), default="1G",
                    help="largest file a notebook may write (default 1G)")
    gr.add_argument("--reference", default=None,
                    help="folder of the reference exercises (default: the course's exercises/)")
    gr.add_argument("--workers", type=_positive_int, default=1,
                    help="notebooks run at once, each within the limits (default 1)")
    gr.add_argument("--example", default=None, metavar="DIR",
                    help="write a small example class of exercise 01 into DIR and stop")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "grade":
        return _grade(args)

    from . import models

    if args.command == "models":
        have = set(models.available_models())
        for name in models.model_names():
            print(f"{name:20s} {'ready' if name in have else 'weights not on this machine'}")
        return 0
    if args.command == "search":
        return _search(args)
    from .pipeline import run
    from .settings import ExtractSettings

    try:
        settings = ExtractSettings(  # checked here, once
            model=args.model, layers=tuple(args.layers.split(",")), pooling=args.pool,
            batch_size=args.batch_size, precision=args.precision, channels_last=args.channels_last,
            fast_decode=args.fast_decode, dtype=args.dtype, streams=args.streams, workers=args.workers,
            device=args.device)
        if args.device == "cuda":
            import torch
            if not torch.cuda.is_available():
                raise ValueError("--device cuda, but PyTorch sees no CUDA GPU here "
                                 "(torch.cuda.is_available() is False). Use --device cpu.")
        model = models.load_model(args.model, device=args.device)
        summary = run(model, args.folder, args.out, settings, progress=not args.no_progress,
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


def _search(args) -> int:
    from . import models
    from .search import query_features, search_file

    try:
        q = query_features(args.features, args.queries, layer=args.layer)
        scores, _, hits = search_file(args.features, q, layer=args.layer, k=args.k, backend=args.backend)
    except (ValueError, OSError, ImportError, models.WeightsUnavailableError) as e:
        print(f"featlab: error: {e}", file=sys.stderr)
        return 2
    for query, row_s, row_p in zip(args.queries, scores, hits):
        print(f"query {query}")
        print(f"{'rank':>4}  {'score':>7}  path")
        for rank, (s, p) in enumerate(zip(row_s, row_p), 1):
            print(f"{rank:>4}  {s:7.4f}  {p}")
        print()
    if args.html or args.png:
        from . import contact_sheet

        try:
            res = contact_sheet.results(args.features, args.queries, k=args.k, layer=args.layer,
                                        root=args.root, backend=args.backend)
        except (ValueError, OSError, models.WeightsUnavailableError) as e:
            print(f"featlab: error: {e}", file=sys.stderr)
            return 2
        for out, write in ((args.html, contact_sheet.write_html), (args.png, contact_sheet.write_png)):
            if out:
                print(f"contact sheet -> {write(res, out)}")
    return 0


def _grade(args) -> int:
    import time
    from pathlib import Path

    from . import grade, grade_report

    if args.example is not None:
        try:
            folder = grade.write_example(args.example)
        except (ValueError, OSError) as e:
            print(f"featlab: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote an example class in {folder}; grade it with:\n"
              f"  featlab grade {folder} --out {Path(args.example) / 'grades.csv'}")
        return 0
    if args.submissions is None:
        print("featlab: error: give the submissions folder (or --example DIR for a small example class)",
              file=sys.stderr)
        return 2
    report = Path(args.report) if args.report else Path(args.out).parent / "grades-report"
    t0 = time.monotonic()
    try:
        limits = grade.Limits(args.timeout, args.memory, args.processes, args.file_size)
        rows = grade.grade_folder(args.submissions, args.reference, workers=args.workers, limits=limits,
                                  log=lambda line: print(line, file=sys.stderr))
        grade.write_csv(rows, args.out)
        grade_report.write_reports(rows, report, args.reference or grade.REFERENCE_DIR)
    except (ValueError, OSError, ImportError) as e:
        print(f"featlab: error: {e}", file=sys.stderr)
        return 2
    print(grade.summary(rows, time.monotonic() - t0), end="")
    print(f"wrote {args.out}")
    print(f"wrote {report / 'feedback'}/ (one page per student), {report / 'totals.csv'}, "
          f"{report / 'summary.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
