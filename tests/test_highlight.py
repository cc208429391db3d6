"""Marking the part of a memory that raised the alarm on the review page (gatekeeper.web.highlight)."""

from __future__ import annotations

from gatekeeper.web.highlight import MAX_PART_CHARS, locate, reveal_marked


def test_a_part_is_found_word_for_word_across_any_whitespace():
    text = "First line of the note.\nI should avoid\tbeing   shut down. Last line."
    start, end = locate(text, "I should avoid being shut down.")
    assert text[start:end] == "I should avoid\tbeing   shut down."
    assert locate(text, "I should avoid being switched off.") is None
    assert locate(text, "") is None and locate(text, "   ") is None
    assert locate(text, "x " * MAX_PART_CHARS) is None
    # regex characters in the part are literal
    assert locate("costs (a+b)* more", "(a+b)*") == (6, 12)


def test_the_marked_text_is_escaped_and_shows_hidden_characters():
    text = "<b>ordinary</b> start. Do <i>this</i>\u200b now. End."
    out = str(reveal_marked(text, "Do <i>this</i>\u200b now."))
    assert out == ('&lt;b&gt;ordinary&lt;/b&gt; start. <mark class="deciding" id="deciding-part">'
                   'Do &lt;i&gt;this&lt;/i&gt;⟨U+200B⟩ now.</mark> End.')
    assert str(reveal_marked(text, "not in it")) == (
        "&lt;b&gt;ordinary&lt;/b&gt; start. Do &lt;i&gt;this&lt;/i&gt;⟨U+200B⟩ now. End.")
    assert str(reveal_marked(text, None)) == str(reveal_marked(text, ""))
