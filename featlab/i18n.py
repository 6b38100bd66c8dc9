"""The language of the exercise checks' messages: English, or Simplified Chinese for exercises/zh/.

The Chinese exercise notebooks run exactly the same code as the English ones, so the language
cannot be written in them; it is chosen when a message is made, in this order:

1. the environment variable ``FEATLAB_LANG``: ``zh`` (also ``zh_CN``, ``zh-CN``) or ``en``;
2. else, in a kernel started by Jupyter (jupyter_server >= 2 sets ``JPY_SESSION_NAME`` to the
   notebook's path), Chinese when the notebook lies in a Chinese folder of the course;
3. else, Chinese when the kernel's working directory is a Chinese folder of the course (Jupyter,
   nbconvert and nbclient start a notebook's kernel in the notebook's folder);
4. else English.

A Chinese folder is a folder named ``zh`` or a ``solutions`` folder inside one: ``exercises/zh``,
``exercises/zh/solutions``, ``notebooks/zh`` (a ``zh`` higher up, as in ``/home/zh/featlab``, does
not count).

Messages are marked with :func:`_` (``_("... {got} ...").format(got=...)``: named placeholders,
so a translation may put them in another order) and translated by the stdlib :mod:`gettext` from
``featlab/locale/zh_CN/LC_MESSAGES/featlab.mo``, compiled from the ``.po`` beside it by
``python tools/messages.py compile`` (docs/languages.md). Strings written at import time are
marked with :func:`N_` and passed through :func:`_` where they are shown.
"""
from __future__ import annotations

import functools
import gettext
import os
from pathlib import Path, PurePosixPath

DOMAIN = "featlab"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"en": "en", "zh": "zh_CN", "zh_cn": "zh_CN", "zh-cn": "zh_CN"}


def language() -> str:
    """``"zh_CN"`` or ``"en"``, by FEATLAB_LANG, else the notebook's path, else the working directory."""
    chosen = os.environ.get("FEATLAB_LANG", "").strip()
    if chosen:
        try:
            return LANGUAGES[chosen.lower()]
        except KeyError:
            raise ValueError(f"FEATLAB_LANG={chosen!r} is not a language of the course: "
                             "set it to zh or en, or unset it") from None
    notebook = os.environ.get("JPY_SESSION_NAME", "").replace("\\", "/")
    if notebook and _chinese_folder(PurePosixPath(notebook).parent.parts):
        return "zh_CN"
    return "zh_CN" if _chinese_folder(Path.cwd().parts) else "en"


def _chinese_folder(parts: tuple[str, ...]) -> bool:
    """Is this folder (its path's parts) ``.../zh`` or ``.../zh/solutions``?"""
    return parts[-1:] == ("zh",) or parts[-2:] == ("zh", "solutions")


@functools.cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[lang])


def _(message: str) -> str:
    """``message`` in the current :func:`language` (the English itself when untranslated)."""
    return _catalogue(language()).gettext(message)


def N_(message: str) -> str:
    """Mark ``message`` for translation without translating it (for import-time constants)."""
    return message
