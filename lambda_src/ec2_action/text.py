"""Build output made fit for a CodePipeline message: terminal control sequences removed, ends cut at line starts.

Builds print for terminals (colours, progress bars redrawn with carriage returns, window titles); the console shows
such bytes raw. `clean` keeps what a terminal would end up showing as text, `tail` keeps the last whole lines.
"""

from __future__ import annotations

import re

CUT_LINE = "…"  # marks the start of a line that had to be cut (a single line longer than the room for it)

# ESC- and 8-bit-introduced sequences (ECMA-48): CSI (colours, cursor moves, erasing); OSC, DCS, SOS, PM and APC
# strings (window titles, hyperlinks) up to their terminator, never past a line end; the other escapes (character
# sets, keypad modes); a lone ESC.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x1b"
)
# Every other C0 and C1 control but tab and newline (carriage returns are resolved first).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _as_shown(line: str) -> str:
    """What a carriage return leaves of a line: the text after the last one (a progress bar's final state)."""
    line = line.rstrip("\r")
    return line[line.rfind("\r") + 1 :]


def clean(text: str) -> str:
    """text without terminal control sequences or control characters other than newline and tab."""
    text = _ESCAPES.sub("", text)
    if "\r" in text:
        text = "\n".join(_as_shown(line) for line in text.split("\n"))
    return _CONTROLS.sub("", text)


def tail(text: str, chars: int) -> str:
    """The end of text within chars characters, beginning at a line start: a first line that the cut would split is
    dropped, unless it is the only line there is (then its end, marked with CUT_LINE)."""
    if len(text) <= chars:
        return text
    if chars <= 0:
        return ""
    window = text[-chars:]
    if text[-chars - 1] == "\n":
        return window
    start = window.find("\n") + 1
    if 0 < start < len(window):
        return window[start:]
    return CUT_LINE + window[len(CUT_LINE) :]
