"""tools/handouts.py (``make handouts``): offline MathJax, rewritten links, the glossary and the
cheat sheet. HTML of one notebook and the two docs into tmp_path; PDFs only where Chromium is.
"""
from __future__ import annotations

import html
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("handouts", ROOT / "tools" / "handouts.py")
handouts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(handouts)

NOTEBOOK = "notebooks/02_receptive_fields.ipynb"   # display math, links to its exercise and docs
PAGES = [NOTEBOOK, "docs/cheatsheet.md", "docs/glossary.md"]

# The terms the course promises, English -> 中文 (the glossary has more).
TERMS = {
    "feature map": "特征图", "receptive field": "感受野", "global average pooling": "全局平均池化",
    "stride": "步幅", "padding": "填充", "channel": "通道", "convolution kernel": "卷积核",
    "activation": "激活", "pooling": "池化", "embedding": "嵌入", "cosine similarity": "余弦相似度",
    "class activation map": "类激活图", "gradient-weighted CAM": "梯度加权类激活图",
    "backbone": "骨干网络", "fine-tuning": "微调", "metric learning": "度量学习", "margin": "间隔",
    "Fisher criterion": "Fisher 判别准则", "Fréchet distance": "Fréchet 距离",
    "feature pyramid": "特征金字塔",
}

# Every formula of the cheat sheet: its heading, and a piece of LaTeX only the right formula has.
FORMULAS = {
    "Cross-correlation": r"sh + di - p",
    "Conv output size": r"\left\lfloor \frac{n + 2p - d\,(k - 1) - 1}{s} \right\rfloor + 1",
    "Receptive-field recursion": r"R_l = R_{l-1} + d_l (k_l - 1) S_{l-1}",
    "GAP + softmax": r"p_k = \frac{e^{z_k}}{\sum_j e^{z_j}}",
    "CAM": r"M_k(h, w) = \sum_c W_{k,c}\, y_{c,h,w}",
    "Grad-CAM weights": r"\alpha_k^c = \frac{1}{hw}\sum_{i,j} \frac{\partial y^c}{\partial A_k[i, j]}",
    "Cosine similarity": r"\frac{u^\top v}{\lVert u \rVert_2 \lVert v \rVert_2}",
    "ArcFace logit": r"s\,(\cos\theta_y - m \sin m)",          # the fallback past θ_y + m = π
    "Trace ratio J and Fisher's J(w)": r"J = \frac{\lVert \mu_1 - \mu_2 \rVert^2}{\sigma_1^2 + \sigma_2^2}",
    "Fréchet distance": r"- 2\,(\Sigma_a \Sigma_b)^{1/2}",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("handouts")
    handouts.build_html(out, PAGES, set(handouts.all_pages()))
    return out


def read(out: Path, page: str) -> str:
    return (out / handouts.html_name(page)).read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES)
def test_math_from_the_local_mathjax_and_nothing_from_the_network(built, page):
    text = read(built, page)
    scripts = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", text)
    assert scripts == ["../mathjax/MathJax.js"], scripts
    assert (built / handouts.html_name(page)).parent.joinpath(scripts[0]).is_file()
    remote = re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]*\"", text)
    remote += re.findall(r"import\(\s*[\"'](?:https?:)?//", text)
    assert not remote, remote
    assert "mathjax.org" not in text and "cdnjs" not in text


def test_links_to_notebooks_and_docs_point_at_the_handout_pages(built):
    import nbformat
    nb = nbformat.read(ROOT / NOTEBOOK, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    targets = re.findall(r"\]\(([^)#\s]+\.(?:ipynb|md))(?:#[^)]*)?\)", source)
    assert "../exercises/02_receptive_fields.ipynb" in targets        # so the test means something
    hrefs = [html.unescape(h) for h in re.findall(r"href=\"([^\"]+)\"", read(built, NOTEBOOK))]
    for target in targets:
        assert target not in hrefs, f"{target} was not rewritten"
        assert str(Path(target).with_suffix(".html")) in hrefs
    gloss = [html.unescape(h) for h in re.findall(r"href=\"([^\"]+)\"", read(built, "docs/glossary.md"))]
    assert "cheatsheet.html" in gloss and "../notebooks/04_gap_classification.html" in gloss


def test_rewrite_links_leaves_urls_anchors_and_other_files_alone():
    known = {"notebooks/06_grad_cam.ipynb", "docs/glossary.md"}
    page = '<a href="../docs/glossary.md#stride">g</a> <a href="06_grad_cam.ipynb">n</a> ' \
           '<a href="https://example.org/x.ipynb">u</a> <a href="#top">t</a> <a href="../README.md">r</a>'
    got = handouts.rewrite_links(page, "notebooks/01_convolution_math.ipynb", known)
    assert re.findall(r'href="([^"]+)"', got) == [
        "../docs/glossary.html#stride", "06_grad_cam.html", "https://example.org/x.ipynb", "#top",
        "../README.md"]


def test_glossary_has_every_term_in_both_languages_with_its_notebook(built):
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>",
                      read(built, "docs/glossary.md"), re.S)
    assert len(rows) >= 40
    def name(cell: str, bracket: str) -> str:        # "feature pyramid (FPN)" -> "feature pyramid"
        return cell.split(bracket)[0].strip().lower()

    for english, chinese in TERMS.items():
        hits = [r for r in rows
                if name(r[0], "(") == english.lower() and name(r[1], "（") == chinese.lower()]
        assert hits, f"no glossary row for {english} / {chinese}"
    for en, _zh, meaning, where in rows:
        assert meaning.strip(), f"{en}: no definition"
        links = re.findall(r'href="\.\./notebooks/([^"]+)\.html"', where)
        assert links, f"{en}: no notebook"
        assert all((ROOT / "notebooks" / f"{n}.ipynb").is_file() for n in links), (en, links)


def test_cheat_sheet_lists_every_formula(built):
    text = read(built, "docs/cheatsheet.md")
    sections = re.findall(r"<section>(.*?)</section>", text, re.S)
    titles = [re.sub(r"<[^>]+>", "", re.search(r"<h2[^>]*>(.*?)</h2>", s, re.S).group(1)) for s in sections]
    assert len(sections) == len(FORMULAS)
    for (name, latex), title, section in zip(FORMULAS.items(), titles, sections):
        assert title.startswith(name), (name, title)
        assert latex in html.unescape(section), f"{name}: formula not found"
        assert re.search(r'href="\.\./notebooks/\d\d_\w+\.html"', section), f"{name}: no notebook link"


def test_inline_math_is_not_cut_by_a_line_that_looks_like_a_list():
    text = "cost $a + b\n- 2c$ here\n- a real item $x$\n\n$$y\n- z$$"
    assert handouts.keep_inline_math(text) == "cost $a + b - 2c$ here\n- a real item $x$\n\n$$y\n- z$$"


@pytest.mark.skipif(handouts.find_chromium() is None,
                    reason="no chromium: PDFs are not made; `make chromium` installs Debian's chromium")
def test_pdfs_one_page_cheat_sheet_typeset_math_and_chinese(built):
    for page in ("docs/cheatsheet.md", "docs/glossary.md"):
        handouts.print_pdf(handouts.find_chromium(), built / handouts.html_name(page),
                           built / Path(page).with_suffix(".pdf"))
    cheat, gloss = built / "docs" / "cheatsheet.pdf", built / "docs" / "glossary.pdf"
    assert handouts.pdf_pages(cheat) == 1
    assert handouts.pdf_pages(gloss) >= 2
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) missing: page count checked, text not")
    cheat_text = subprocess.run(["pdftotext", cheat, "-"], capture_output=True, text=True).stdout
    gloss_text = subprocess.run(["pdftotext", gloss, "-"], capture_output=True, text=True).stdout
    assert "Receptive-field recursion" in cheat_text
    assert "file:" not in cheat_text, "Chromium's header/footer (date, file URL) was printed"
    assert not re.search(r"\\(frac|sum|lVert|theta)|\$\$", cheat_text), "MathJax did not finish"
    assert "特征图" in gloss_text and "感受野" in gloss_text


# --- the Chinese edition (issue 22) ---------------------------------------------------------

def chinese_page() -> str:
    """A Chinese page that exists: a notebook if one is translated yet, else an exercise."""
    pages = handouts.edition_pages("zh")
    if not pages:
        pytest.skip("no Chinese notebook or exercise yet (notebooks/zh/, exercises/zh/)")
    return next((p for p in pages if p.startswith("notebooks/zh/")), pages[0])


def chinese_share(text: str) -> float:
    """Share of CJK ideographs among the letters and ideographs of ``text``."""
    letters = [c for c in text if c.isalpha()]
    return sum("\u4e00" <= c <= "\u9fff" for c in letters) / max(len(letters), 1)


@pytest.fixture(scope="module")
def both_editions(tmp_path_factory) -> tuple[Path, str]:
    """HTML of one Chinese page and its English original, and the two indexes."""
    out = tmp_path_factory.mktemp("editions")
    page = chinese_page()
    english = page.replace("/zh/", "/")
    everything = handouts.all_pages()
    handouts.build_html(out, [page, english], set(everything))
    for edition, words in handouts.EDITIONS.items():
        (out / words["index"]).write_text(handouts.index_html(everything, set(), edition), encoding="utf-8")
    return out, page


def test_each_edition_has_an_index_that_links_the_other(both_editions):
    out, page = both_editions
    english, chinese = (out / "index.html").read_text(), (out / "index.zh.html").read_text()
    assert re.search(r'<a [^>]*href="index\.zh\.html"', english), "the English index does not link the Chinese"
    assert re.search(r'<a [^>]*href="index\.html"', chinese), "the Chinese index does not link the English"
    assert f'href="{handouts.html_name(page)}"' in chinese          # the Chinese page, not the English
    assert f'href="{handouts.html_name(page)}"' not in english
    assert '<html lang="zh-CN">' in chinese and '<html lang="en">' in english
    assert chinese_share(re.sub(r"<[^>]+>|\{[^}]*\}", " ", chinese.split("<body")[1])) > 0.2


def test_a_chinese_page_reads_in_chinese(both_editions):
    out, page = both_editions
    text = read(out, page)
    assert '<html lang="zh-CN">' in text                             # Simplified Chinese glyphs
    prose = " ".join(re.findall(r'<div class="[^"]*jp-RenderedMarkdown[^"]*"[^>]*>(.*?)</div>', text, re.S))
    prose = re.sub(r"<[^>]+>|\$[^$]*\$|<code>.*?</code>", " ", prose)
    assert chinese_share(prose) > 0.3, prose[:500]
    english = read(out, page.replace("/zh/", "/"))
    assert chinese_share(re.sub(r"<[^>]+>", " ", english.split("<body")[1])) < 0.05


@pytest.mark.skipif(handouts.find_chromium() is None,
                    reason="no chromium: PDFs are not made; `make chromium` installs Debian's chromium "
                           "and fonts-noto-cjk")
def test_a_chinese_pdf_embeds_a_cjk_font(both_editions):
    out, page = both_editions
    pdf = out / Path(page).with_suffix(".pdf")
    handouts.print_pdf(handouts.find_chromium(), out / handouts.html_name(page), pdf)
    assert handouts.pdf_pages(pdf) >= 1
    fonts = set(re.findall(rb"/(?:BaseFont|FontName)\s*/(?:[A-Z]{6}\+)?([\w-]+)", pdf.read_bytes()))
    assert any(b"CJK" in f for f in fonts), f"no CJK font in the PDF (fonts-noto-cjk?): {sorted(fonts)}"
