"""Text the grader writes somewhere a human or a program reads it: terminal, CSV, Markdown.

Student-controlled text (ids, file names, exception messages, written answers) may hold
terminal escapes, spreadsheet formulas or Markdown that pretends to be the grader's own
structure; these helpers make it inert for each destination.
"""

import hashlib
import re
import unicodedata

MAX_STATUS = 1000  # characters of one gradebook status
MAX_INLINE = 200  # characters of one quoted name or message on a line
MAX_BLOCK = 20_000  # characters of one quoted block (a written answer, an error)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _escape(ch):
    """A visible stand-in for an invisible or controlling character."""
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _is_control(ch):
    # Cc: ESC, CR, LF, BEL, C1; Cf: bidi overrides, zero-width; Cs: lone surrogates (undecodable
    # bytes in a file name); Zl/Zp: line separators
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def printable(text, keep="", limit=None):
    """Text with every control character (ESC, CR, LF, OSC...) shown as an escape, capped."""
    text = str(text)
    out = "".join(ch if ch in keep or not _is_control(ch) else _escape(ch) for ch in text)
    if limit is not None and len(out) > limit:
        out = out[:limit - 1] + "…"
    return out


def status(text):
    """A gradebook status: one line, no control characters, capped."""
    return printable(text, limit=MAX_STATUS)


def csv_cell(text):
    """A CSV text cell a spreadsheet shows as text, never evaluates (=, +, -, @ at the start)."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA) else text


def _longest_run(text, ch):
    return max((len(m) for m in re.findall(f"{re.escape(ch)}+", text)), default=0)


def inline(text, limit=MAX_INLINE):
    """Student text as one Markdown code span: shown literally, never parsed as Markdown/HTML."""
    text = printable(" ".join(str(text).split()) or " ", limit=limit)
    ticks = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def block(text, limit=MAX_BLOCK):
    """Student text as a fenced Markdown block whose fence no line of the text can close."""
    text = printable(str(text).replace("\r\n", "\n"), keep="\n\t", limit=limit)
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    return f"{fence}text\n{text}\n{fence}"


def file_name(student):
    """A file name unique per student id: the id where it is safe, else a cleaned id + hash."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._-")[:80] or "student"
    if safe == student:
        return safe
    return f"{safe}~{hashlib.sha256(student.encode('utf-8', 'surrogateescape')).hexdigest()[:10]}"
