"""A CJK font embedded in the PDF, so that a court's reader shows the document as it was made.

reportlab's built-in ``STSong-Light`` (the ledger's exports) is a font *name*: the reader substitutes a
font of its own, or shows nothing. Documents that a procuratorate or a court keeps (extraction lists,
handover receipts) embed their glyphs instead: Noto Sans CJK SC (``fonts-noto-cjk``) is subset to the
characters of the document and its outlines converted to TrueType (reportlab embeds TrueType only), and
DejaVu Sans supplies what Noto lacks. A character in neither is shown as ``[U+XXXX]``; so are the control
pictures (``␛`` ``␀``) that ``export_text.visible`` puts for control characters, which no installed font
draws: a control character is shown by its own number (``\x1b`` → ``[U+001B]``). Text is made visible and
escaped by ``export_text.pdf_markup`` first, as in every other export.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from evidence_server.export_text import pdf_markup, visible

log = logging.getLogger(__name__)

NOTO_FILES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc"),
)
NOTO_FACE = "Noto Sans CJK SC"
FALLBACK_FILES = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),)
FALLBACK = "CustodiaDejaVu"
NOT_EMBEDDED = "STSong-Light"  # when no Noto CJK is installed: still readable, but not embedded
_lock = threading.Lock()


class FontMissing(RuntimeError):
    """No CJK font to embed is installed (``apt-get install fonts-noto-cjk``)."""


def _first(paths: tuple[Path, ...]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def cjk_font_file() -> Path | None:
    return _first(NOTO_FILES)


@lru_cache(maxsize=1)
def _face_index(path: Path) -> int:
    from fontTools.ttLib import TTCollection

    coll = TTCollection(str(path), lazy=True)
    for i, font in enumerate(coll.fonts):
        if font["name"].getDebugName(4) == NOTO_FACE:
            return i
    return 0


def _truetype_subset(path: Path, text: str, face_name: str) -> tuple[bytes, set[int]]:
    """Noto's glyphs for ``text`` as a TrueType font (quadratic outlines) named ``face_name``, and the code
    points it covers. (reportlab keeps one font per PostScript name: each subset needs a name of its own.)"""
    from fontTools import subset
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    font = TTFont(str(path), fontNumber=_face_index(path), lazy=False)
    cmap = font.getBestCmap()
    covered = {ord(c) for c in text if ord(c) in cmap}
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.layout_features = []
    options.hinting = False
    options.desubroutinize = True
    sub = subset.Subsetter(options)
    sub.populate(unicodes=covered | {0x20})
    sub.subset(font)
    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    outlines = {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        glyphs[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        outlines[name] = pen.glyph()
    font["loca"] = newTable("loca")
    glyf = font["glyf"] = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = outlines
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    font["head"].glyphDataFormat = 0
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attr in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    font.sfntVersion = "\x00\x01\x00\x00"
    for record in font["name"].names:
        if record.nameID == 6:
            record.string = face_name
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    out = io.BytesIO()
    font.save(out)
    return out.getvalue(), covered


@dataclass(frozen=True)
class Fonts:
    """The fonts of one document: its CJK face (embedded subset) and the fallback face."""

    main: str
    covered: frozenset[int]
    fallback: str | None
    fallback_covered: frozenset[int]
    embedded: bool

    def markup(self, value: object) -> str:
        """``pdf_markup`` of ``value``, each character the main face lacks set in the fallback or shown by number."""
        if not self.embedded:
            return pdf_markup(value)
        out: list[str] = []
        for ch in visible(value):
            code = ord(ch)
            if code in self.covered or ch in "\n\t ":
                out.append(pdf_markup(ch))
            elif self.fallback and code in self.fallback_covered:
                out.append(f'<font name="{self.fallback}">{pdf_markup(ch)}</font>')
            elif 0x2400 <= code <= 0x2421:  # a control picture no font draws: the control's own number
                out.append(f"[U+{0x7F if code == 0x2421 else code - 0x2400:04X}]")
            else:
                out.append(f"[U+{code:04X}]")
        return "".join(out)


@lru_cache(maxsize=1)
def _fallback() -> tuple[str, frozenset[int]] | None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    path = _first(FALLBACK_FILES)
    if path is None:
        return None
    font = TTFont(FALLBACK, str(path))
    pdfmetrics.registerFont(font)
    return FALLBACK, frozenset(font.face.charToGlyph.keys())


def fonts_for(texts: list[str], *, require_embedded: bool = False) -> Fonts:
    """Register (once per character set) the fonts a document of these texts needs."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    path = cjk_font_file()
    if path is None:
        if require_embedded:
            raise FontMissing("no Noto Sans CJK font installed: apt-get install fonts-noto-cjk")
        log.warning("fonts-noto-cjk is not installed: the PDF names %s without embedding it", NOT_EMBEDDED)
        with _lock:
            if NOT_EMBEDDED not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(UnicodeCIDFont(NOT_EMBEDDED))
        return Fonts(NOT_EMBEDDED, frozenset(), None, frozenset(), False)
    shown = [visible(t) for t in texts]
    chars = "".join(sorted({c for t in shown for c in t} | set("[U+0123456789ABCDEF]")))
    name = "CustodiaCJK-" + hashlib.sha256(chars.encode()).hexdigest()[:16]
    with _lock:
        fallback = _fallback()
        if name not in _COVERED:
            data, covered = _truetype_subset(path, chars, name)
            pdfmetrics.registerFont(TTFont(name, io.BytesIO(data)))
            _COVERED[name] = frozenset(covered)
            _forget_oldest()
        _COVERED.move_to_end(name)
        glyphs = _COVERED[name]
    fb_name, fb_covered = fallback if fallback else (None, frozenset())
    return Fonts(name, glyphs, fb_name, fb_covered, True)


#: the subsets registered with reportlab, least recently used first; each is one document's characters
_COVERED: OrderedDict[str, frozenset[int]] = OrderedDict()
KEEP = 64


def _forget_oldest() -> None:
    """Unregister the least recently used subsets beyond ``KEEP``: reportlab's registry never forgets a font,
    and a server issuing documents all day would otherwise hold every subset it ever made."""
    from reportlab.pdfbase import pdfmetrics

    while len(_COVERED) > KEEP:
        old, _ = _COVERED.popitem(last=False)
        font = pdfmetrics._fonts.pop(old, None)
        if font is not None:
            pdfmetrics._dynFaceNames.pop(font.face.name, None)
