"""text: terminal control sequences out of build output, tails cut at line starts."""

import pytest

from ec2_action import text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[1;31mred\x1b[0m plain \x1b[38;5;208morange\x1b[m", "red plain orange"),  # SGR colours
        ("\x1b[2K\x1b[1Gredrawn \x1b[?25lhidden cursor\x1b[?25h", "redrawn hidden cursor"),  # erase, move, modes
        ("\x1b]0;window title\x07after", "after"),  # OSC ended by BEL
        ("\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink ended by ST
        ("\x1b(B\x1b=\x1b7text\x1b8", "text"),  # character set, keypad mode, save and restore cursor
        ("\x9b31mC1 CSI\x9b0m", "C1 CSI"),  # 8-bit CSI
        ("nul\x00 bell\x07 backspace\x08 del\x7f esc\x1b", "nul bell backspace del esc"),
        ("tab\tkept\nnewline kept\n", "tab\tkept\nnewline kept\n"),
        ("windows\r\nline\r\n", "windows\nline\n"),
        ("progress 10%\rprogress 60%\rprogress 100%\ndone\n", "progress 100%\ndone\n"),  # what the terminal shows
        ("unterminated \x1b]0;title\nnext line", "unterminated \nnext line"),  # an OSC never eats past a line end
    ],
)
def test_clean_keeps_what_a_terminal_shows_as_text(raw: str, shown: str) -> None:
    assert text.clean(raw) == shown


def test_clean_keeps_ordinary_text_and_unicode() -> None:
    sample = "naïve — ✓ 日本語 [brackets] 100% ~tilde~\n"
    assert text.clean(sample) == sample


def test_tail_starts_at_a_line_start() -> None:
    output = "".join(f"line {i}\n" for i in range(1, 1001))

    tail = text.tail(output, 100)

    assert len(tail) <= 100 and tail.endswith("line 1000\n")
    assert tail.startswith("line ") and output.endswith(tail) and output[-len(tail) - 1] == "\n"
    assert text.tail(output, 30) == "line 998\nline 999\nline 1000\n"  # "line 997" would have been cut


def test_tail_keeps_a_window_that_begins_exactly_at_a_line() -> None:
    assert text.tail("aaa\nbbb\nccc", 7) == "bbb\nccc"


def test_tail_of_short_text_is_the_text() -> None:
    assert text.tail("a\nb\n", 100) == "a\nb\n"


def test_a_single_line_longer_than_the_room_keeps_its_end_marked_as_cut() -> None:
    assert text.tail("x" * 50 + "END", 10) == text.CUT_LINE + "xxxxxxEND"
    assert text.tail("short\n" + "y" * 50 + "\n", 10) == text.CUT_LINE + "yyyyyyyy\n"
