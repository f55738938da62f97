"""Synthetic generators checked against independent recognisers written here (not the module's)."""

from __future__ import annotations

import re

import pytest
import torch

from nested_learning.data import decode
from nested_learning.synthetic import (
    EOS,
    FORMAL_LANGUAGES,
    formal_language_batch,
    formal_spec,
    mqar_batch,
    passkey_batch,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- independent checkers
def shuffle2_member(s: str) -> bool:
    for o, c in ("()", "[]"):
        depth = 0
        for ch in s:
            depth += (ch == o) - (ch == c)
            if depth < 0:
                return False
        if depth:
            return False
    return set(s) <= set("()[]")


MEMBER = {
    "parity": lambda s: re.fullmatch(r"[01]*", s) is not None and s.count("1") % 2 == 0,
    "aa_star": lambda s: re.fullmatch(r"(aa)*", s) is not None,
    "abab_star": lambda s: re.fullmatch(r"(abab)*", s) is not None,
    "anbn": lambda s: (m := re.fullmatch(r"(a+)(b+)", s)) is not None and len(m[1]) == len(m[2]),
    "anbncn": lambda s: (
        (m := re.fullmatch(r"(a+)(b+)(c+)", s)) is not None and len(m[1]) == len(m[2]) == len(m[3])
    ),
    "shuffle2": shuffle2_member,
}


THIN = {  # every member up to length 36 of the languages with one string per length
    "aa_star": ["aa" * n for n in range(19)],
    "abab_star": ["abab" * n for n in range(10)],
    "anbn": ["a" * n + "b" * n for n in range(1, 19)],
    "anbncn": ["a" * n + "b" * n + "c" * n for n in range(1, 13)],
}


def is_prefix(language: str, p: str, alphabet: str) -> bool:
    """Some member starts with ``p``: enumeration for the thin languages, else breadth-first
    search over completions (parity needs ≤ 1 symbol, Shuffle-2 ≤ its open depth ≤ 7)."""
    if language in THIN:
        return any(m.startswith(p) for m in THIN[language])
    frontier = {p}
    for _ in range(8):
        if any(MEMBER[language](s) for s in frontier):
            return True
        frontier = {s + c for s in frontier for c in alphabet}
    return False


def brute_next(language: str, prefix: str, alphabet: str) -> set[str]:
    out = {c for c in alphabet if is_prefix(language, prefix + c, alphabet)}
    return out | ({"$"} if MEMBER[language](prefix) else set())


# --------------------------------------------------------------------------- formal languages
@pytest.mark.parametrize("language", FORMAL_LANGUAGES)
def test_formal_strings_are_members_and_labels_match_a_brute_force_recogniser(
    language: str,
) -> None:
    spec = formal_spec(language)
    batch = formal_language_batch(language, 12, 2, 12, gen(1))
    symbols = [*spec.alphabet, "$"]
    for b, s in enumerate(batch.strings):
        assert MEMBER[language](s), s
        assert 2 <= len(s) <= 12 and batch.lengths[b] == len(s)
        ids = [spec.alphabet[i - 3] for i in batch.inputs[b, 1 : len(s) + 1].tolist()]
        assert "".join(ids) == s and batch.inputs[b, 0] == 1
        assert batch.mask[b].sum() == len(s) + 1 and not batch.mask[b, len(s) + 1 :].any()
        for t in range(len(s) + 1):
            got = {c for c, y in zip(symbols, batch.labels[b, t].tolist(), strict=True) if y}
            assert got == brute_next(language, s[:t], spec.alphabet), (s, t)
    assert batch.labels.shape == (12, batch.inputs.size(1), spec.num_labels)
    assert spec.label_token_ids[-1] == EOS


def test_parity_labels_are_the_running_parity_and_lengths_cover_the_range() -> None:
    batch = formal_language_batch("parity", 200, 5, 9, gen(2))
    assert set(batch.lengths.tolist()) == set(range(5, 10))
    for b, s in enumerate(batch.strings):
        for t in range(len(s) + 1):
            assert batch.labels[b, t, 2] == float(s[:t].count("1") % 2 == 0)


@pytest.mark.parametrize("language", FORMAL_LANGUAGES)
def test_formal_batches_are_deterministic_under_a_seed(language: str) -> None:
    a = formal_language_batch(language, 8, 4, 20, gen(5))
    b = formal_language_batch(language, 8, 4, 20, gen(5))
    assert a.strings == b.strings and torch.equal(a.labels, b.labels)


def test_formal_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="language"):
        formal_language_batch("dyck9", 2, 2, 4, gen())
    with pytest.raises(ValueError, match="batch_size"):
        formal_language_batch("parity", 0, 2, 4, gen())
    with pytest.raises(ValueError, match="max_len"):
        formal_language_batch("parity", 2, 5, 4, gen())
    with pytest.raises(ValueError, match="max_len"):
        formal_language_batch("abab_star", 2, 5, 7, gen())  # no multiple of 4 in range


# --------------------------------------------------------------------------- MQAR
@pytest.mark.parametrize("seq_len", [None, 64])
def test_mqar_answers_recomputed_from_the_sequence(seq_len: int | None) -> None:
    batch = mqar_batch(16, 8, gen(3), vocab_size=64, num_queries=6, seq_len=seq_len)
    t = 2 * 8 + 2 * 6 if seq_len is None else seq_len
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape == (16, t)
    for row, tgt, m in zip(
        batch.inputs.tolist(), batch.targets.tolist(), batch.mask.tolist(), strict=True
    ):
        table = {row[i]: row[i + 1] for i in range(0, 16, 2)}
        assert len(table) == 8 and all(1 <= k <= 31 < v < 64 for k, v in table.items())
        queries = [i for i in range(16, t) if m[i]]
        assert len(queries) == 6
        assert len({row[i] for i in queries}) == 6  # distinct keys
        for i in queries:
            assert tgt[i] == table[row[i]] == row[i + 1]
        others = [row[i] for i in range(16, t) if not m[i] and not (i and m[i - 1])]
        assert all(x == 0 for x in others)  # filler only between query pairs


def test_mqar_deterministic_and_bad_arguments() -> None:
    a, b = mqar_batch(4, 4, gen(7)), mqar_batch(4, 4, gen(7))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.inputs, mqar_batch(4, 4, gen(8)).inputs)
    with pytest.raises(ValueError, match="num_pairs"):
        mqar_batch(2, 40, gen(), vocab_size=64)
    with pytest.raises(ValueError, match="num_queries"):
        mqar_batch(2, 4, gen(), num_queries=5)
    with pytest.raises(ValueError, match="seq_len"):
        mqar_batch(2, 4, gen(), seq_len=10)
    with pytest.raises(ValueError, match="vocab_size"):
        mqar_batch(2, 1, gen(), vocab_size=3)


# --------------------------------------------------------------------------- passkey
def test_passkey_answer_is_the_hidden_number() -> None:
    batch = passkey_batch(3, 1024, gen(4), num_digits=5)
    assert batch.inputs.shape == (3, 1024) and batch.mask.sum(1).tolist() == [5, 5, 5]
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    for b in range(3):
        text = decode(batch.inputs[b]) + decode(batch.targets[b, -1:])
        hidden = re.findall(r"The pass key is (\d{5})\. Remember it\.", text)
        assert len(hidden) == 1
        answer = decode(batch.targets[b][batch.mask[b]])
        assert answer == hidden[0] and text.endswith(
            f"What is the pass key? The pass key is {answer}"
        )


def test_passkey_deterministic_and_bad_arguments() -> None:
    assert torch.equal(passkey_batch(2, 256, gen(1)).inputs, passkey_batch(2, 256, gen(1)).inputs)
    with pytest.raises(ValueError, match="seq_len"):
        passkey_batch(2, 40, gen())
    with pytest.raises(ValueError, match="num_digits"):
        passkey_batch(2, 256, gen(), num_digits=0)
