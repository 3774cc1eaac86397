"""Error Comment (0000,0902) is LO: at most 64 characters, shortened between words."""

from __future__ import annotations

import random

from cardiogate.dicom.ingest import ERROR_COMMENT_LENGTH, error_comment


def test_a_short_comment_is_kept_as_it_is() -> None:
    assert error_comment("SOPClassUID is missing") == "SOPClassUID is missing"


def test_a_long_comment_ends_after_the_last_whole_word_that_fits() -> None:
    # 65 characters: the old [:64] sent "... its header sa"
    text = "data set is truncated: an element is shorter than its header says"
    assert error_comment(text) == "data set is truncated: an element is shorter than its header"


def test_words_ending_at_64_are_kept_whole() -> None:
    sixty_four = "word " * 12 + "word"
    assert len(sixty_four) == 64
    assert error_comment(sixty_four) == sixty_four
    assert error_comment(sixty_four + " next") == sixty_four
    assert error_comment(sixty_four + "s") == sixty_four[:-5]  # "words" no longer fits


def test_every_cut_is_a_prefix_of_whole_words() -> None:
    rng = random.Random(19)
    vocabulary = ["SeriesInstanceUID", "is", "not", "a", "valid", "UID", "(65", "characters)"]
    for _ in range(500):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 30))]
        text = " ".join(words)
        comment = error_comment(text)
        assert len(comment) <= ERROR_COMMENT_LENGTH
        kept = comment.split(" ")
        assert kept == words[: len(kept)], (text, comment)  # never a word cut in two
        if len(text) > ERROR_COMMENT_LENGTH:  # and no room wasted: the next word did not fit
            assert len(" ".join(words[: len(kept) + 1])) > ERROR_COMMENT_LENGTH


def test_a_single_word_longer_than_64_is_cut_at_64() -> None:
    uid = "1." + "2" * 80
    assert error_comment(uid) == uid[:64]


def test_punctuation_left_at_the_cut_is_dropped() -> None:
    text = "x" * 50 + " refused, " + "because of something long enough to cut"
    assert error_comment(text) == "x" * 50 + " refused"


def test_the_comment_is_one_ascii_line_without_backslashes() -> None:
    comment = error_comment("cannot write\nto the spool:\tC:\\data\\spool (Überlauf)")
    assert comment == "cannot write to the spool: C:/data/spool (?berlauf)"
    comment.encode("ascii")
