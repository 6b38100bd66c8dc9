"""Workshop handouts: ``make handouts`` -> build/handouts/, a folder that works offline.

Usage: python tools/handouts.py [--out build/handouts] [--no-pdf] [PAGE ...]

- HTML of every notebook and exercise (student copy and solution) with its *committed* outputs
  and figures; nothing is executed, the stored outputs are the handout.
- docs/cheatsheet.md and docs/glossary.md as HTML (mistune, which nbconvert already uses).
- index.html, the pages in course order, each titled by its first heading.
- Formulas are typeset by a copy of MathJax 2 (pip package ``jupyter-server-mathjax``) placed
  in the output folder, so no page loads anything from the network.
- A PDF of every notebook and of the two docs, printed by headless Chromium (Debian's
  ``chromium``; ``make chromium`` installs it). Without Chromium the PDFs are skipped.

The output folder mirrors the repository (notebooks/, exercises/, exercises/solutions/, docs/),
so a relative link keeps its path: ``../docs/glossary.md`` becomes ``../docs/glossary.html``
and ``../exercises/02_receptive_fields.ipynb`` becomes ``../exercises/02_receptive_fields.html``.
PAGE arguments (repository paths) build only those pages, plus index.html.
"""
from __future__ import annotations

import argparse
import functools
import html
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mistune
import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["docs/cheatsheet.md", "docs/glossary.md"]
# The PDF is printed from the page as laid out for a printed A4 page: ``?print`` (or the
# browser's own print) sets class "print" on <html>, which switches on the print styles, and
# Chromium's window is as wide as the printable width, so MathJax, which typesets once, breaks
# long formulas for the page's width, not the screen's.
PRINT_WIDTH_PX = 703   # A4 (210 mm) less two 12 mm margins, at 96 px per inch
PRINT_MODE = r"""<script>
if (/[?&]print\b/.test(location.search)) document.documentElement.classList.add("print");
addEventListener("beforeprint", () => document.documentElement.classList.add("print"));
</script>"""

# MathJax 2, configured before it loads: HTML-CSS output with the STIX-Web fonts, the only ones
# the package ships (its default, the TeX fonts, would fall back to unstyled text).
MATHJAX = PRINT_MODE + r"""
<script>
window.MathJax = {
  config: ["TeX-AMS-MML_HTMLorMML-full.js", "Safe.js"],
  jax: ["input/TeX", "output/HTML-CSS"],
  tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
            processEscapes: true, processEnvironments: true},
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true}},
  displayAlign: "center", messageStyle: "none", showMathMenu: false
};
</script>
<script src="URL"></script>"""
WIDGET_NOTE = ("<p class='handout-note'>[Interactive widget: open the notebook in JupyterLab "
               "to use it.]</p>")

# Shared by notebooks and docs: A4 pages, code that wraps instead of running off the page,
# figures kept whole, Noto CJK for Chinese (Debian's fonts-noto-cjk).
PRINT_CSS = """
@page { size: A4; margin: 13mm 12mm; }
body { font-family: "DejaVu Sans", "Noto Sans CJK SC", sans-serif; }
.handout-note { color: #666; font-style: italic; }
html.print * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
html.print body { --jp-code-font-size: 7.6pt; --jp-content-font-size1: 10pt; }
html.print main, html.print .jp-Notebook { padding: 0 !important; }
html.print .jp-InputPrompt, html.print .jp-OutputPrompt { display: none !important; }
html.print pre { white-space: pre-wrap !important; overflow-wrap: anywhere;
  font-size: 7.6pt; line-height: 1.3; }
html.print .jp-OutputArea-output, html.print .MathJax_Display { overflow: visible !important; }
html.print img, html.print .jp-RenderedImage { break-inside: avoid; max-width: 100% !important;
  height: auto; }
html.print :is(h1, h2, h3, h4) { break-after: avoid; break-inside: avoid; }
html.print .jp-MarkdownCell:has(:is(h1, h2, h3, h4):last-child) { break-after: avoid; }
html.print .MathJax_Display { break-inside: avoid; }
"""

NOTEBOOK_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{#- nothing from the network: no require.js, no widget manager, no mermaid -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}{{ resources.mathjax_html }}{%- endblock html_head_js_mathjax -%}
{%- block extra_css -%}<style>""" + PRINT_CSS + """</style>{%- endblock extra_css -%}
"""

DOC_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>TITLE</title>
MATHJAX
<style>CSS</style></head>
<body class="doc NAME"><main>
BODY
</main></body></html>
"""

DOC_CSS = PRINT_CSS + """
body { max-width: 60em; margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #111; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.9em; }
a { color: #1a5fb4; text-decoration: none; }
html.print body { max-width: none; margin: 0; padding: 0; font-size: 9.5pt; }
html.print tr { break-inside: avoid; }
/* the cheat sheet: one A4 page, two columns */
.cheatsheet h1 { font-size: 1.35em; margin: 0 0 0.2em; }
.cheatsheet h2 { font-size: 1em; margin: 0.7em 0 0.1em; color: #1a5fb4; }
.cheatsheet p { margin: 0.15em 0; }
.cheatsheet div.math { margin: 0.15em 0; font-size: 0.94em; }
.cheatsheet main { column-count: 2; column-gap: 2em; }
.cheatsheet section, .cheatsheet h2 { break-inside: avoid; }
.cheatsheet h1, .cheatsheet h1 + p { column-span: all; }
html.print .cheatsheet { font-size: 9.2pt; line-height: 1.3; }
"""

INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>featlab — handouts</title>
<style>{css}
td a + a {{ margin-left: 0.6em; }}
</style></head>
<body class="doc index"><main>
<h1>featlab — workshop handouts</h1>
<p>Every page shows the outputs stored with the notebook; nothing here needs a network.
Reference: <a href="docs/cheatsheet.html">formula cheat sheet</a>{cheat_pdf} ·
<a href="docs/glossary.html">glossary (English / 中文)</a>{gloss_pdf}</p>
<table><thead><tr><th>#</th><th>notebook</th><th>exercise</th><th>solution</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</main></body></html>
"""


# --- finding the pages -----------------------------------------------------------------------

def all_pages() -> list[str]:
    """Repository paths of every page, in course order (notebook, exercise, solution, ...)."""
    pages = []
    for pattern in ("notebooks/*.ipynb", "exercises/*.ipynb", "exercises/solutions/*.ipynb"):
        pages += [p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob(pattern))]
    return pages + DOCS


def html_name(page: str) -> str:
    """notebooks/01_x.ipynb -> notebooks/01_x.html (the output folder mirrors the repository)."""
    return str(Path(page).with_suffix(".html").as_posix())


def first_heading(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return fallback


def title_of(page: str) -> str:
    path = ROOT / page
    if page.endswith(".md"):
        return first_heading(path.read_text(encoding="utf-8"), path.stem)
    nb = nbformat.read(path, as_version=4)
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    return first_heading(md[0] if md else "", path.stem)


def inline_title(title: str) -> str:
    """Escape a heading for HTML, keeping `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(title))


# --- rendering -------------------------------------------------------------------------------

def rewrite_links(text: str, page: str, known: set[str]) -> str:
    """Relative links to pages of the handout (.ipynb, docs/*.md) -> their .html file."""
    here = Path(page).parent

    def fix(m: re.Match) -> str:
        target = html.unescape(m.group(2))
        if re.match(r"^[a-z][a-z0-9+.-]*:|^[#/]", target):   # URL, anchor or absolute path
            return m.group(0)
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath((here / path).as_posix()).replace(os.sep, "/")
        if resolved not in known:
            return m.group(0)
        new = Path(path).with_suffix(".html").as_posix() + (f"#{anchor}" if anchor else "")
        return f'{m.group(1)}"{html.escape(new)}"'

    return re.sub(r'(href=)"([^"]*)"', fix, text)


def keep_inline_math(text: str) -> str:
    """Inside $...$, a line break before "- ", "1. ", "#" or ">" becomes a space.

    JupyterLab takes the math out before it reads the markdown; nbconvert reads the markdown
    first, so such a line would start a list (or heading) and break the formula in two.
    """
    def join(m: re.Match) -> str:
        return re.sub(r"\n(?=[ \t]*(?:[-+*]|\d+[.)])[ \t]|[ \t]*[#>])", " ", m.group(0))

    parts = re.split(r"(\$\$.*?\$\$)", text, flags=re.S)          # leave display math alone
    return "".join(p if p.startswith("$$") else
                   re.sub(r"(?<![\\$])\$(?:(?!\n[ \t]*\n)[^$])+?\$", join, p) for p in parts)


def mathjax_html(page: str) -> str:
    """The MathJax script tags for ``page``: out/mathjax/MathJax.js, relative to the page."""
    return MATHJAX.replace("URL", "../" * page.count("/") + "mathjax/MathJax.js")


@functools.cache
def exporter() -> HTMLExporter:
    """nbconvert's JupyterLab page, without anything loaded from the network (one for all)."""
    return HTMLExporter(template_name="lab", template_file="handout.html.j2",
                        extra_loaders=[DictLoader({"handout.html.j2": NOTEBOOK_TEMPLATE})])


def notebook_html(page: str) -> str:
    """A notebook as HTML with its stored outputs; widgets become a note (they need a kernel)."""
    nb = nbformat.read(ROOT / page, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = keep_inline_math(cell.source)
        for out in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {}):
                out["data"] = {"text/html": WIDGET_NOTE}
    body, _ = exporter().from_notebook_node(nb, resources={"metadata": {"name": title_of(page)},
                                                         "mathjax_html": mathjax_html(page)})
    return body


def doc_html(page: str) -> str:
    """A markdown page (docs/) as HTML with MathJax; each ``##`` section kept in one piece."""
    text = (ROOT / page).read_text(encoding="utf-8")
    render = mistune.create_markdown(escape=False, plugins=["table", "math", "strikethrough"])
    body = render(text)
    body = re.sub(r"(<h2.*?)(?=<h2|<h1|\Z)", r"<section>\1</section>\n", body, flags=re.S)
    parts = {"TITLE": html.escape(title_of(page)), "MATHJAX": mathjax_html(page), "CSS": DOC_CSS,
             "NAME": Path(page).stem, "BODY": body}
    return re.sub("|".join(parts), lambda m: parts[m.group(0)], DOC_PAGE)


def index_html(pages: list[str], pdfs: set[str]) -> str:
    def link(page: str | None, label: str | None = None) -> str:
        if page is None:
            return ""
        a = f'<a href="{html_name(page)}">{label or inline_title(title_of(page))}</a>'
        if page in pdfs:
            a += f' <a href="{Path(page).with_suffix(".pdf").as_posix()}">PDF</a>'
        return a

    rows = []
    for nb in (p for p in pages if p.startswith("notebooks/")):
        name = Path(nb).name
        ex, sol = f"exercises/{name}", f"exercises/solutions/{name}"
        rows.append(f"<tr><td>{name[:2]}</td><td>{link(nb)}</td>"
                    f"<td>{link(ex if ex in pages else None, 'exercise')}</td>"
                    f"<td>{link(sol if sol in pages else None, 'solution')}</td></tr>")
    pdf = {d: (f' (<a href="{Path(d).with_suffix(".pdf").as_posix()}">PDF</a>)' if d in pdfs else "")
           for d in DOCS}
    return INDEX_PAGE.format(css=DOC_CSS, rows="\n".join(rows), cheat_pdf=pdf[DOCS[0]],
                             gloss_pdf=pdf[DOCS[1]])


def copy_mathjax(out: Path) -> None:
    """The MathJax 2 of jupyter-server-mathjax -> out/mathjax/ (once)."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        sys.exit("tools/handouts.py needs a local MathJax: pip install -c constraints.txt "
                 "jupyter-server-mathjax (make install does it).")
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (out / "mathjax" / "MathJax.js").exists():
        shutil.copytree(src, out / "mathjax", dirs_exist_ok=True)


def build_html(out: Path, pages: list[str], known: set[str]) -> None:
    """Write out/<page>.html for each page (pages: repository paths)."""
    copy_mathjax(out)
    for page in pages:
        text = doc_html(page) if page.endswith(".md") else notebook_html(page)
        target = out / html_name(page)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rewrite_links(text, page, known), encoding="utf-8")


# --- PDF -------------------------------------------------------------------------------------

def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def print_pdf(chromium: str, html_file: Path, pdf_file: Path) -> None:
    """Headless Chromium's print-to-PDF. Virtual time runs the page's timers (MathJax) to the
    end before printing, without waiting for them in real time."""
    # --no-sandbox: Chromium refuses to run as root (containers) without it; pages are local files
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
           "--virtual-time-budget=60000", "--run-all-compositor-stages-before-draw",
           f"--window-size={PRINT_WIDTH_PX},1000", f"--print-to-pdf={pdf_file}",
           html_file.resolve().as_uri() + "?print"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


def pdf_pages(pdf_file: Path) -> int:
    """Page count of a PDF that Chromium wrote (one ``/Type /Page`` object per page)."""
    return len(re.findall(rb"/Type\s*/Page\b", pdf_file.read_bytes()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", help="repository paths to build (default: all)")
    ap.add_argument("--out", default="build/handouts", type=Path)
    ap.add_argument("--no-pdf", action="store_true", help="HTML only")
    ap.add_argument("--jobs", type=int, default=2, help="Chromiums printing at once (default 2)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    everything = all_pages()
    pages = args.pages or everything
    unknown = [p for p in pages if p not in everything]
    if unknown:
        sys.exit(f"not a notebook, exercise or doc of this repository: {unknown}; "
                 "give paths such as notebooks/06_grad_cam.ipynb or docs/glossary.md.")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    build_html(out, pages, set(everything))
    print(f"HTML: {len(pages)} pages in {out}/ ({time.perf_counter() - start:.0f} s)")

    chromium = None if args.no_pdf else find_chromium()
    if not args.no_pdf and chromium is None:
        print("PDF skipped: no chromium on PATH (make chromium installs Debian's chromium).")
    if chromium:
        printed = [p for p in pages if p.startswith("notebooks/") or p in DOCS]

        def one(page: str) -> str:
            pdf = out / Path(page).with_suffix(".pdf")
            print_pdf(chromium, out / html_name(page), pdf)
            n = pdf_pages(pdf)
            warn = "  <-- the cheat sheet should fit on one page" if page == DOCS[0] and n > 1 else ""
            return f"PDF: {pdf} ({n} pages){warn}"

        with ThreadPoolExecutor(args.jobs) as pool:     # Chromium waits a lot: 2 at once pays
            for line in pool.map(one, printed):
                print(line, flush=True)
    pdfs = {p for p in everything if (out / Path(p).with_suffix(".pdf")).exists()}
    (out / "index.html").write_text(index_html(everything, pdfs), encoding="utf-8")
    print(f"done in {time.perf_counter() - start:.0f} s: open {out / 'index.html'}")


if __name__ == "__main__":
    main()
