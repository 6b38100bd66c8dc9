"""The Chinese edition uses the glossary's terms.

For a curated set of core terms of docs/glossary.md: whenever the English of a catalogue entry
(locale/zh_CN/**/*.po, prose cells and code comments) contains the term, its Chinese must contain
the glossary's Chinese for it (read from the glossary's Chinese column) or one of the few variants
listed here. The English is searched outside `inline code`, $formulas$ and link targets, which the
translation copies as they are (tests/test_translations.py checks those).

A wrong term fails with the catalogue, the entry and the term, e.g. an entry whose English says
"feature map" translated with 特征映射 instead of 特征图.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import translate  # noqa: E402
GLOSSARY = ROOT / "docs" / "glossary.md"
CATALOGUES = sorted((ROOT / "locale" / "zh_CN").glob("**/*.po"))

# Glossary row (its English, as the glossary spells it) -> how the English is found (a regex,
# case-insensitive, whole words; None = the term itself, plural allowed) and the Chinese variants
# accepted besides the glossary's own (parts of the glossary's term, or an established synonym;
# "row:X" = the glossary's Chinese for X, for an English word with two senses).
CORE: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "activation function": (None, ()),
    "activation maximisation": (r"activation maximi[sz]ation", ()),
    "anti-aliasing": (r"anti-?alias(?:ing|ed|es)?", ()),
    "backbone": (None, ("骨干",)),
    "baseline": (None, ()),
    "batch normalisation": (r"batch normali[sz]ation", ()),
    "bootstrap": (r"bootstrap(?:s|ped|ping)?", ("自助",)),            # 自助重采样
    "channel": (None, ()),
    "class activation map": (None, ()),
    "closed form": (r"closed[- ]form", ("闭式",)),
    "contiguous tensor": (r"contiguous", ("连续",)),
    "convolution": (r"convolutions?(?:al)?", ()),
    "convolution kernel": (r"kernels?", ("核",)),
    "cosine similarity": (r"cosine similarit(?:y|ies)", ()),
    "covariance matrix": (r"covariances?(?: matri(?:x|ces))?", ("协方差",)),
    "cross-correlation": (None, ()),
    "depth-wise convolution": (r"depth-?wise", ("逐通道",)),
    "dilation": (None, ("空洞", "膨胀")),
    "effective receptive field": (None, ()),
    "embedding": (None, ()),
    "equivariance": (r"equivarian(?:ce|t)", ("等变",)),
    "eval mode": (r"eval(?:uation)? mode", ()),
    "feature extraction": (None, ()),
    "Fourier parameterisation": (r"Fourier parameteri[sz]ation", ()),
    "feature map": (None, ()),
    "feature pyramid": (None, ()),
    "fine-tuning": (r"fine-?tun(?:e|es|ed|ing)", ()),
    "Fisher criterion": (r"Fisher(?:'s)? criterion", ()),
    "Fisher direction": (r"Fisher(?:'s)? direction", ()),
    "Gabor filter": (None, ()),
    "global average pooling": (None, ()),
    "gradient ascent": (None, ()),
    "heatmap": (r"heat ?maps?", ()),
    "interleaved repeats": (r"interleaved", ("交错",)),
    "held-out": (r"held[- ]out", ()),
    "histogram of oriented gradients": (None, ()),
    "invariance": (r"invarian(?:ce|t)", ("不变",)),
    "leave-one-out": (None, ("留一",)),
    "linear probe": (None, ()),
    "metric learning": (None, ()),
    "mixed precision": (None, ()),
    "paired bootstrap": (None, ()),
    "parameter count": (None, ()),
    "phase-scrambled image": (r"phase[- ]scrambl(?:ed|e|es|ing)", ("相位打乱",)),
    "pointing game": (None, ()),
    "pooling": (None, ()),
    "pretrained model": (r"pre-?trained", ("预训练",)),
    "receptive field": (None, ()),
    "recall@k": (r"recall@ ?(?:k|\d+)", ("召回率", "recall@")),      # the metric's name, as printed
    "retrieval": (None, ()),
    "ridge": (None, ("岭",)),
    "running statistics": (None, ()),
    "saliency map": (None, ()),
    "sanity check": (None, ()),
    "silhouette score": (r"silhouette scores?", ()),
    "shrinkage": (None, ()),
    "similarity map": (None, ()),
    "stride": (None, ("row:strides",)),                              # a tensor's strides: 步长
    "throughput": (None, ()),
    "tie band": (None, ()),
    "trace ratio": (None, ()),
    "train mode": (r"train(?:ing)? mode", ()),
    "no clear difference": (None, ()),
    "within-class scatter matrix": (r"within-class", ("类内",)),
    "between-class scatter matrix": (r"between-class", ("类间",)),
}

_PAREN_EN = re.compile(r"^(.*?)\s*\((.*)\)\s*$")
_PAREN_ZH = re.compile(r"^(.*?)\s*（(.*)）\s*$")
# what the term check leaves out: translate's own patterns for code, formulas and link targets
_SKIP = re.compile("|".join(p.pattern for p in (translate._CODE, translate._FORMULA, translate._LINK))
                   + r"|<!--.*?-->", re.S)


def _split(cell: str, paren: re.Pattern) -> tuple[list[str], list[str]]:
    m = paren.match(cell)
    main, inner = (m.group(1), m.group(2)) if m else (cell, "")
    parts = lambda s: [p.strip() for p in s.split(" / ") if p.strip()]
    return parts(main), parts(inner)


def glossary_terms(text: str) -> dict[str, list[str]]:
    """English term -> its accepted Chinese, from the glossary's first two columns.

    "eval mode / train mode" | "评估模式 / 训练模式" pairs the slashed names; a bracket pairs with
    a bracket ("convolution kernel (filter)" | "卷积核（滤波器）"); a Chinese bracket with no English
    one is a synonym ("dilation" | "空洞率（膨胀率）": either); an English bracket with no Chinese one
    is an abbreviation ("global average pooling (GAP)") and names nothing.
    """
    terms: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != 4 or cells[0] in ("English", "---") or not line.startswith("| "):
            continue
        (en_main, en_in), (zh_main, zh_in) = _split(cells[0], _PAREN_EN), _split(cells[1], _PAREN_ZH)
        pairs = list(zip(en_main, zh_main)) if len(en_main) == len(zh_main) else \
            [(e, " / ".join(zh_main)) for e in en_main]
        for en, zh in pairs:
            terms[en] = [zh] + (zh_in if not en_in else [])
        if en_in and len(en_in) == len(zh_in):
            for en, zh in zip(en_in, zh_in):
                terms.setdefault(en, [zh])
    return terms


def english_pattern(term: str, regex: str | None) -> re.Pattern:
    body = regex or re.escape(term).replace(r"\ ", r"[\s-]+") + r"(?:s|es)?"
    return re.compile(r"(?<![\w@-])(?:" + body + r")(?![\w@])", re.I)


def wrong_terms(entries, terms: dict[str, list[str]], core=CORE) -> list[str]:
    """'msgctxt: term -> expected one of [...]' for every entry that misses a core term."""
    found = []
    for entry in entries:
        if not entry.msgstr or entry.fuzzy or entry.obsolete:      # those test_translations reports
            continue
        english = _SKIP.sub(" ", entry.msgid)
        for term, (regex, variants) in core.items():
            if english_pattern(term, regex).search(english):
                accepted = [*terms[term]]
                for v in variants:
                    accepted += terms[v[4:]] if v.startswith("row:") else [v]
                if not any(a.lower() in entry.msgstr.lower() for a in accepted):
                    first = entry.msgid.strip().splitlines()[0][:50]
                    found.append(f"{entry.msgctxt} ({first!r}): '{term}' -> one of {accepted}")
    return found


@pytest.fixture(scope="module")
def terms() -> dict[str, list[str]]:
    return glossary_terms(GLOSSARY.read_text(encoding="utf-8"))


def test_every_core_term_is_in_the_glossary(terms):
    rows = [v[4:] for _, variants in CORE.values() for v in variants if v.startswith("row:")]
    missing = [t for t in [*CORE, *rows] if t not in terms]
    assert not missing, f"core terms without a glossary row (docs/glossary.md): {missing}"
    assert terms["eval mode"] == ["评估模式"] and terms["train mode"] == ["训练模式"]
    assert terms["dilation"] == ["空洞率", "膨胀率"] and terms["filter"] == ["滤波器"]
    assert terms["stride"] == ["步幅"] and terms["strides"] == ["步长"] and "GAP" not in terms


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=[p.relative_to(ROOT).as_posix() for p in CATALOGUES])
def test_catalogue_uses_the_glossary_terms(catalogue, terms):
    found = wrong_terms(polib.pofile(str(catalogue)), terms)
    assert not found, f"{catalogue.relative_to(ROOT)}: terms not as in docs/glossary.md:\n  " + "\n  ".join(found)


def test_a_wrong_term_is_found(terms):
    """The check itself: a planted wrong term fails, the glossary's term or a variant passes."""
    entry = lambda en, zh: polib.POEntry(msgctxt="cell 1", msgid=en, msgstr=zh)
    bad = [entry("Each **feature map** has stride 2.", "每个**特征映射**的步幅为 2。"),
           entry("Stride 2 halves the map", "步长为 2 时特征图减半"),        # accepted: a tensor's strides are 步长
           entry("Strides of the layers", "各层的跨度"),
           entry("a `feature_map` and $stride$", "一个 `feature_map` 和 $stride$"),   # code, formula: skipped
           entry("the within-class spread", "类内的离散程度"),
           entry("No clear difference.", "差别不明显。")]
    found = wrong_terms(bad, terms)
    assert len(found) == 3, found          # the 步长 line passes: 'stride' accepts the row 'strides' too
    assert "'feature map'" in found[0] and "'stride'" in found[1] and "'no clear difference'" in found[2]
