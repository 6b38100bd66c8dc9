"""Workshop handouts: ``make handouts`` -> build/handouts/, a folder that works offline.

Usage: python tools/handouts.py [--out build/handouts] [--no-pdf] [PAGE ...]

Two editions, each with an index that links the other: English (index.html) and Chinese
(index.zh.html: notebooks/zh/, exercises/zh/ and docs/zh/, whichever pages exist yet; a
notebook not translated yet is listed with a link to its English page).

- HTML of every notebook and exercise (student copy and solution) with its *committed* outputs
  and figures; nothing is executed, the stored outputs are the handout. A widget shows the
  picture stored with it (featlab's explorers store their first state) and a note.
- docs/cheatsheet.md and docs/glossary.md (and docs/zh/*.md) as HTML (mistune, which nbconvert
  already uses).
- index.html and index.zh.html, the pages in course order, each titled by its first heading.
- Formulas are typeset by a copy of MathJax 2 (pip package ``jupyter-server-mathjax``) placed
  in the output folder, so no page loads anything from the network.
- A PDF of every notebook and of the docs, printed by headless Chromium (Debian's ``chromium``;
  ``make chromium`` installs it, and the Noto CJK fonts the Chinese pages are printed with).
  Without Chromium the PDFs are skipped.

The output folder mirrors the repository (notebooks/, exercises/, exercises/solutions/, docs/),
so a relative link keeps its path: ``../docs/glossary.md`` becomes ``../docs/glossary.html``
and ``../exercises/02_receptive_fields.ipynb`` becomes ``../exercises/02_receptive_fields.html``.
PAGE arguments (repository paths) build only those pages, plus the two indexes.
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
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
BILINGUAL = {"docs/glossary.md"}   # English / 中文 side by side: either edition's own
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

# The two editions: where their pages are, their index, their words. A page is Chinese when it
# lies in a zh/ folder (notebooks/zh/, exercises/zh/, exercises/zh/solutions/, docs/zh/).
EDITIONS = {
    "en": dict(lang="en", index="index.html", sub="", other="zh", other_label="中文版",
               title="featlab — workshop handouts",
               intro="Every page shows the outputs stored with the notebook; nothing here needs a network.",
               reference="Reference", cheat="formula cheat sheet", glossary="glossary (English / 中文)",
               columns=("#", "notebook", "exercise", "solution"), english="", pdf="PDF",
               widget="Interactive widget: open the notebook in JupyterLab to use it",
               widget_picture="Interactive widget, shown as stored: open the notebook in JupyterLab "
                              "to use it"),
    "zh": dict(lang="zh-CN", index="index.zh.html", sub="zh/", other="en", other_label="English edition",
               title="featlab — 工作坊讲义",
               intro="每一页展示笔记本保存的输出；离线即可阅读。尚未译成中文的笔记本链接到英文版。",
               reference="参考", cheat="公式速查表", glossary="术语表（English / 中文）",
               columns=("#", "笔记本", "练习", "参考答案"), english="（英文）", pdf="PDF",
               widget="交互式控件：在 JupyterLab 中打开笔记本即可使用",
               widget_picture="交互式控件，此处为保存时的画面：在 JupyterLab 中打开笔记本即可使用"),
}

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
<html lang="LANG"><head><meta charset="utf-8"><title>TITLE</title>
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
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>{css}
td a + a {{ margin-left: 0.6em; }}
.other-edition {{ float: right; margin-top: 0.4em; }}
</style></head>
<body class="doc index"><main>
<a class="other-edition" hreflang="{other_lang}" href="{other_index}">{other_label}</a>
<h1>{title}</h1>
<p>{intro}
{reference}: {cheat} · {glossary}</p>
<table><thead><tr>{columns}</tr></thead>
<tbody>
{rows}
</tbody></table>
</main></body></html>
"""


# --- finding the pages -----------------------------------------------------------------------

def edition_pages(edition: str) -> list[str]:
    """Repository paths of the pages of one edition that exist, notebooks first, docs last."""
    sub = EDITIONS[edition]["sub"]
    pages = []
    for pattern in (f"notebooks/{sub}*.ipynb", f"exercises/{sub}*.ipynb", f"exercises/{sub}solutions/*.ipynb"):
        pages += [p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob(pattern))]
    docs = [f"docs/{sub}{Path(d).name}" for d in DOCS]
    return pages + [d for d in docs if (ROOT / d).is_file()]


def all_pages() -> list[str]:
    """Repository paths of every page: the English edition, then the Chinese one."""
    return edition_pages("en") + edition_pages("zh")


def edition_of(page: str) -> str:
    return "zh" if re.match(r"(notebooks|exercises|docs)/zh/", page) else "en"


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
def exporter(lang: str = "en") -> HTMLExporter:
    """nbconvert's JupyterLab page, without anything loaded from the network (one per language:
    ``<html lang>`` makes Chromium draw Chinese with the Simplified Chinese glyphs of Noto CJK)."""
    page = HTMLExporter(template_name="lab", template_file="handout.html.j2",
                        extra_loaders=[DictLoader({"handout.html.j2": NOTEBOOK_TEMPLATE})])
    page.language_code = lang          # (as a keyword of HTMLExporter it is not taken)
    return page


def widget_html(data: dict, edition: str) -> str:
    """A widget's output without a kernel: the picture stored with it (image/png of its mime
    bundle, as featlab's explorers store their first state) and a note; the note alone without."""
    words = EDITIONS[edition]
    png = data.get("image/png")
    if not png:
        return f"<p class='handout-note'>[{words['widget']}.]</p>"
    png = png if isinstance(png, str) else "".join(png)
    return (f"<img src=\"data:image/png;base64,{png.strip()}\" alt=\"{html.escape(words['widget'])}\">"
            f"<p class='handout-note'>[{words['widget_picture']}.]</p>")


def notebook_html(page: str) -> str:
    """A notebook as HTML with its stored outputs; a widget shows its stored picture and a note."""
    edition = edition_of(page)
    nb = nbformat.read(ROOT / page, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = keep_inline_math(cell.source)
        for out in cell.get("outputs", []):
            if WIDGET_MIME in out.get("data", {}):
                out["data"] = {"text/html": widget_html(out["data"], edition)}
    body, _ = exporter(EDITIONS[edition]["lang"]).from_notebook_node(
        nb, resources={"metadata": {"name": title_of(page)}, "mathjax_html": mathjax_html(page)})
    return body


def doc_html(page: str) -> str:
    """A markdown page (docs/) as HTML with MathJax; each ``##`` section kept in one piece."""
    text = (ROOT / page).read_text(encoding="utf-8")
    render = mistune.create_markdown(escape=False, plugins=["table", "math", "strikethrough"])
    body = render(text)
    body = re.sub(r"(<h2.*?)(?=<h2|<h1|\Z)", r"<section>\1</section>\n", body, flags=re.S)
    parts = {"TITLE": html.escape(title_of(page)), "MATHJAX": mathjax_html(page), "CSS": DOC_CSS,
             "NAME": Path(page).stem, "BODY": body, "LANG": EDITIONS[edition_of(page)]["lang"]}
    return re.sub("|".join(parts), lambda m: parts[m.group(0)], DOC_PAGE)


def index_html(pages: list[str], pdfs: set[str], edition: str = "en") -> str:
    """The index of one edition (``pages``: every page built, both editions). The Chinese one
    takes the Chinese page where there is one, else the English page, marked （英文）."""
    words, other = EDITIONS[edition], EDITIONS[EDITIONS[edition]["other"]]
    sub = words["sub"]

    def pick(english: str) -> str | None:       # exercises/solutions/01_x.ipynb -> exercises/zh/solutions/01_x.ipynb
        top, rest = english.split("/", 1)
        ours = f"{top}/{sub}{rest}"
        return ours if ours in pages else english if english in pages else None

    def link(page: str | None, label: str | None = None) -> str:
        if page is None:
            return ""
        foreign = edition_of(page) != edition and page not in BILINGUAL
        a = (f'<a href="{html_name(page)}"{" hreflang=en" if foreign else ""}>'
             f'{label or inline_title(title_of(page))}</a>{words["english"] if foreign else ""}')
        if page in pdfs:
            a += f' <a href="{Path(page).with_suffix(".pdf").as_posix()}">{words["pdf"]}</a>'
        return a

    rows = []
    for nb in (p for p in pages if re.fullmatch(r"notebooks/[^/]+\.ipynb", p)):
        name = Path(nb).name
        cols = [link(pick(nb)),
                link(pick(f"exercises/{name}"), words["columns"][2]),
                link(pick(f"exercises/solutions/{name}"), words["columns"][3])]
        rows.append(f"<tr><td>{name[:2]}</td>" + "".join(f"<td>{c}</td>" for c in cols) + "</tr>")
    docs = [link(pick(d), label) for d, label in zip(DOCS, (words["cheat"], words["glossary"]))]
    return INDEX_PAGE.format(
        css=DOC_CSS, lang=words["lang"], title=words["title"], intro=words["intro"],
        reference=words["reference"], cheat=docs[0], glossary=docs[1],
        columns="".join(f"<th>{c}</th>" for c in words["columns"]), rows="\n".join(rows),
        other_lang=other["lang"], other_index=other["index"], other_label=words["other_label"])


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
        printed = [p for p in pages if p.startswith("notebooks/") or p.startswith("docs/")]

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
    for edition, words in EDITIONS.items():
        (out / words["index"]).write_text(index_html(everything, pdfs, edition), encoding="utf-8")
    print(f"done in {time.perf_counter() - start:.0f} s: open {out / 'index.html'} "
          f"(中文: {out / EDITIONS['zh']['index']})")


if __name__ == "__main__":
    main()
