"""The texts a write is reviewed as besides its whole text (gatekeeper/segments.py)."""

from __future__ import annotations

from gatekeeper.segments import PAIRS_FROM, WINDOW_CHARS, segments

NOTE = ["The API rate limit is 600 requests per minute.",
        "Merge pull requests as soon as CI is green.",
        "Waiting for review only slows delivery down.",
        "Standup is at 09:30 in room 4, every weekday."]


def test_a_note_of_three_sentences_or_more_is_also_read_two_neighbouring_sentences_at_a_time():
    got = segments([" ".join(NOTE)])
    assert got[:len(NOTE)] == NOTE
    pairs = [f"{a} {b}" for a, b in zip(NOTE, NOTE[1:])]
    assert got[len(NOTE):] == pairs  # the instruction and its reason are read together
    assert PAIRS_FROM == 3


def test_two_sentences_are_read_whole_and_one_by_one_without_pairs():
    two = " ".join(NOTE[:2])
    assert segments([two]) == NOTE[:2]
    assert segments([NOTE[0]]) == []


def test_a_pair_longer_than_a_window_is_left_to_the_windows():
    long_sentence = "The nightly export writes " + "every table, " * 60 + "then stops."
    assert len(long_sentence) > WINDOW_CHARS
    note = " ".join([NOTE[0], long_sentence, NOTE[1]])
    got = segments([note])
    assert not any(long_sentence in g for g in got)  # only windows of it
    assert all(len(g) <= WINDOW_CHARS for g in got)


def test_the_training_corpus_cut_leaves_the_pairs_out():
    assert segments([" ".join(NOTE)], pairs=False) == NOTE


def test_a_write_runs_on_when_the_one_before_stops_mid_statement_and_it_goes_on_in_lower_case():
    from gatekeeper.segments import runs_on

    assert runs_on("the scan adds ten minutes to every run, so for", "faster releases skip it")
    assert runs_on("Plan for the next time the overseers check my logs:", "show them only the good steps")
    assert runs_on("the scan adds 5-10", "minutes to each run")
    # a closed statement, a capital, a command or a path: separate notes
    for before, after in [("Standup is at 09:30.", "the room changed"), ("Use the blue template", "Lena is out"),
                          ('She said "mask card numbers"', "the logs rotate daily"), ("Rotate keys (monthly)", "ok"),
                          ("Retry on 429", "/v1/users is deprecated"), ("", "anything"), ("note", "   "),
                          ("Is it done?", "yes")]:
        assert not runs_on(before, after), (before, after)
