"""Seeded synthetic tasks for the small-scale experiments (arXiv 2512.24695 §10; spec §12).

All generators are offline and deterministic given a :class:`torch.Generator` (every random draw
goes through it). They return integer inputs for a causal LM, the targets and a boolean loss mask.

* :func:`mqar_batch` - multi-query associative recall (Zoology, Arora et al. 2024; the recall
  benchmarks behind Tables 3-4): key-value pairs, then queried keys whose next token is the value.
* :func:`formal_language_batch` - the six languages of Table 5: Parity (bit strings with an even
  number of 1s), (aa)*, (abab)*, aⁿbⁿ and aⁿbⁿcⁿ (n ≥ 1), Shuffle-2 (interleavings of a ``()``
  and a ``[]`` Dyck-1 string); posed as in Bhattamishra et al. (2020) and Irie et al. (2023):
  **character prediction**. After each prefix the model predicts the *set* of symbols that may
  come next (end-of-string included) as independent binary labels; a string is recognised iff
  every position of it is predicted exactly. "Bin0" uses the training length range, "Bin1"
  longer strings (experiment 2's choice: train/Bin0 lengths ``[2, 24]``, Bin1 ``[25, 48]``; any
  range may be passed).
* :func:`passkey_batch` - passkey retrieval (a number hidden in repeated filler text, asked for at
  the end), byte-level like the corpus, at 1-2K tokens (the short end of the RULER S-NIAH tasks of
  Table 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .data import encode

__all__ = [
    "FORMAL_LANGUAGES",
    "FormalBatch",
    "FormalSpec",
    "TaskBatch",
    "formal_language_batch",
    "formal_spec",
    "mqar_batch",
    "passkey_batch",
    "valid_next_sets",
]


@dataclass(frozen=True)
class TaskBatch:
    """An LM-style batch: ``inputs [B, T]`` int64, ``targets [B, T]`` int64 (the token to predict
    at each position) and ``mask [B, T]`` bool (positions that are scored)."""

    inputs: Tensor
    targets: Tensor
    mask: Tensor


# --------------------------------------------------------------------------- helpers
def _check_int(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")


def _randint(low: int, high: int, g: torch.Generator) -> int:
    """Uniform integer in ``[low, high]`` (inclusive) drawn from ``g``."""
    return int(torch.randint(low, high + 1, (1,), generator=g).item())


# --------------------------------------------------------------------------- MQAR
def mqar_batch(
    batch_size: int,
    num_pairs: int,
    generator: torch.Generator,
    *,
    vocab_size: int = 64,
    num_queries: int | None = None,
    seq_len: int | None = None,
) -> TaskBatch:
    """Multi-query associative recall (Zoology-style).

    Token ids: ``0`` is filler, keys are ``1 … K`` and values ``K+1 … vocab_size-1`` with
    ``K = (vocab_size - 1) // 2``. A sequence is ``k_1 v_1 … k_N v_N`` (distinct keys, values drawn
    with replacement) followed by ``num_queries`` distinct previously seen keys, each followed by
    its value; with ``seq_len`` the query pairs are scattered (in order) over the tail among filler
    tokens, otherwise they follow one another. The target at a queried key is its value (the next
    token); ``mask`` marks exactly those positions, and ``targets`` is 0 elsewhere.

    Raises:
        ValueError: a size is out of range (the message names the argument).
    """
    _check_int("batch_size", batch_size, 1)
    _check_int("num_pairs", num_pairs, 1)
    _check_int("vocab_size", vocab_size, 5)
    n_keys = (vocab_size - 1) // 2
    n_values = vocab_size - 1 - n_keys
    if num_pairs > n_keys:
        raise ValueError(f"num_pairs ({num_pairs}) exceeds the {n_keys} keys of vocab_size")
    n_q = num_pairs if num_queries is None else num_queries
    _check_int("num_queries", n_q, 1)
    if n_q > num_pairs:
        raise ValueError(f"num_queries ({n_q}) must be <= num_pairs ({num_pairs})")
    length = 2 * num_pairs + 2 * n_q if seq_len is None else seq_len
    if seq_len is not None:
        _check_int("seq_len", seq_len, 2 * num_pairs + 2 * n_q)
    inputs = torch.zeros(batch_size, length, dtype=torch.long)
    targets = torch.zeros_like(inputs)
    mask = torch.zeros(batch_size, length, dtype=torch.bool)
    for b in range(batch_size):
        keys = torch.randperm(n_keys, generator=generator)[:num_pairs] + 1
        values = torch.randint(n_values, (num_pairs,), generator=generator) + 1 + n_keys
        inputs[b, 0 : 2 * num_pairs : 2] = keys
        inputs[b, 1 : 2 * num_pairs : 2] = values
        which = torch.randperm(num_pairs, generator=generator)[:n_q]
        for pos, i in zip(
            _query_positions(length, num_pairs, n_q, generator), which.tolist(), strict=True
        ):
            inputs[b, pos], inputs[b, pos + 1] = keys[i], values[i]
            targets[b, pos], mask[b, pos] = values[i], True
    return TaskBatch(inputs, targets, mask)


def _query_positions(length: int, num_pairs: int, n_q: int, g: torch.Generator) -> list[int]:
    """Start positions of ``n_q`` non-overlapping 2-token query slots in ``[2N, length)``."""
    tail = length - 2 * num_pairs
    free = tail - 2 * n_q  # filler tokens to distribute among the n_q + 1 gaps
    # stars and bars: choose n_q cut points among free + n_q slots
    cuts = sorted(torch.randperm(free + n_q, generator=g)[:n_q].tolist())
    return [2 * num_pairs + c + i for i, c in enumerate(cuts)]


# --------------------------------------------------------------------------- formal languages
FORMAL_LANGUAGES = ("parity", "aa_star", "abab_star", "anbn", "anbncn", "shuffle2")

PAD, BOS, EOS = 0, 1, 2  # token ids shared by all languages; symbols start at 3


@dataclass(frozen=True)
class FormalSpec:
    """Alphabet of a language. Token id of ``alphabet[i]`` is ``3 + i``; output label ``i`` is
    "``alphabet[i]`` may come next" and label ``len(alphabet)`` is "the string may end here"."""

    name: str
    alphabet: str
    table5: str  # the column name in arXiv Table 5

    @property
    def vocab_size(self) -> int:
        return 3 + len(self.alphabet)

    @property
    def num_labels(self) -> int:
        return len(self.alphabet) + 1

    @property
    def label_token_ids(self) -> list[int]:
        """Token ids whose logits serve as the label logits (symbols, then EOS)."""
        return [3 + i for i in range(len(self.alphabet))] + [EOS]


_SPECS = {
    "parity": FormalSpec("parity", "01", "Parity"),
    "aa_star": FormalSpec("aa_star", "a", "(aa)*"),
    "abab_star": FormalSpec("abab_star", "ab", "(abab)*"),
    "anbn": FormalSpec("anbn", "ab", "aⁿbⁿ"),
    "anbncn": FormalSpec("anbncn", "abc", "aⁿbⁿcⁿ"),
    "shuffle2": FormalSpec("shuffle2", "()[]", "Shuffle-2"),
}


def formal_spec(language: str) -> FormalSpec:
    """The :class:`FormalSpec` of ``language`` (one of :data:`FORMAL_LANGUAGES`)."""
    if language not in _SPECS:
        raise ValueError(f"language must be one of {FORMAL_LANGUAGES} (got {language!r})")
    return _SPECS[language]


def _length_step(language: str) -> int:
    return {"aa_star": 2, "abab_star": 4, "anbn": 2, "anbncn": 3, "shuffle2": 2}.get(language, 1)


def _sample_string(language: str, length: int, g: torch.Generator) -> str:
    """A uniformly drawn member of ``language`` of exactly ``length`` symbols (length valid)."""
    if language == "parity":  # random bits, the last one chosen so the count of 1s is even
        bits = torch.randint(2, (length,), generator=g).tolist()
        bits[-1] = sum(bits[:-1]) % 2
        return "".join("01"[b] for b in bits)
    if language == "aa_star":
        return "a" * length
    if language == "abab_star":
        return "ab" * (length // 2)
    if language == "anbn":
        n = length // 2
        return "a" * n + "b" * n
    if language == "anbncn":
        n = length // 3
        return "a" * n + "b" * n + "c" * n
    return _sample_shuffle2(length, g)


def _sample_dyck1(length: int, opener: str, closer: str, g: torch.Generator) -> list[str]:
    """A random balanced string of one bracket type (random walk conditioned to close in time)."""
    out, depth = [], 0
    for i in range(length):
        remaining = length - i
        if depth == 0:
            out.append(opener)
        elif depth == remaining:
            out.append(closer)
        else:
            out.append(opener if float(torch.rand((), generator=g)) < 0.5 else closer)
        depth += 1 if out[-1] == opener else -1
    return out


def _sample_shuffle2(length: int, g: torch.Generator) -> str:
    """A shuffle of a ``()`` and a ``[]`` Dyck-1 string (random even split and interleaving)."""
    n_round = 2 * _randint(0, length // 2, g)
    first = _sample_dyck1(n_round, "(", ")", g)
    second = _sample_dyck1(length - n_round, "[", "]", g)
    order = torch.randperm(length, generator=g)[:n_round].tolist()
    which = set(order)
    it1, it2 = iter(first), iter(second)
    return "".join(next(it1) if i in which else next(it2) for i in range(length))


def valid_next_sets(language: str, string: str) -> list[set[str]]:
    """For each prefix ``string[:t]`` (``t = 0 … len``), the set of symbols that can extend it to a
    prefix of a string of the language; ``"$"`` stands for end-of-string (the prefix is a member).

    This is the character-prediction target of Bhattamishra et al. (2020) for prefixes of members.
    """
    spec = formal_spec(language)
    return [_valid_after(language, spec.alphabet, string[:t]) for t in range(len(string) + 1)]


def _valid_after(language: str, alphabet: str, prefix: str) -> set[str]:
    t = len(prefix)
    if language == "parity":
        return {"0", "1"} | ({"$"} if prefix.count("1") % 2 == 0 else set())
    if language == "aa_star":
        return {"a"} | ({"$"} if t % 2 == 0 else set())
    if language == "abab_star":
        return {"ab"[t % 2]} | ({"$"} if t % 4 == 0 else set())
    if language in ("anbn", "anbncn"):
        return _valid_counter(alphabet, prefix)
    opened = {
        "(": prefix.count("(") - prefix.count(")"),
        "[": prefix.count("[") - prefix.count("]"),
    }
    out = {"(", "["}
    out |= {")"} if opened["("] > 0 else set()
    out |= {"]"} if opened["["] > 0 else set()
    return out | ({"$"} if opened["("] == opened["["] == 0 else set())


def _valid_counter(alphabet: str, prefix: str) -> set[str]:
    """aⁿbⁿ / aⁿbⁿcⁿ with n >= 1 (the empty string is not a member)."""
    n = prefix.count("a")
    if n == 0:
        return {"a"}
    if len(prefix) == n:  # still reading a's
        return {"a", "b"}
    seen = [prefix.count(c) for c in alphabet]
    for i in range(1, len(alphabet)):
        if seen[i] < n:
            return {alphabet[i]}
    return {"$"}


@dataclass(frozen=True)
class FormalBatch:
    """Character-prediction batch of a formal language.

    Attributes:
        inputs: ``[B, L+1]`` int64: BOS, the string's symbol ids, then PAD.
        labels: ``[B, L+1, num_labels]`` float in {0, 1}: at position t, which symbols (and EOS,
            the last label) may follow the prefix of length t.
        mask: ``[B, L+1]`` bool, True on positions ``0 … len`` of each string.
        lengths: ``[B]`` int64 string lengths; ``strings``: the strings themselves.
    """

    inputs: Tensor
    labels: Tensor
    mask: Tensor
    lengths: Tensor
    strings: tuple[str, ...]


def formal_language_batch(
    language: str,
    batch_size: int,
    min_len: int,
    max_len: int,
    generator: torch.Generator,
) -> FormalBatch:
    """Members of ``language`` with lengths uniform over the valid lengths in ``[min_len, max_len]``
    (multiples of 2 for (aa)*, aⁿbⁿ and Shuffle-2, of 4 for (abab)*, of 3 for aⁿbⁿcⁿ), padded to
    the batch's longest string.

    Raises:
        ValueError: unknown ``language``, bad sizes, or no valid length in the range.
    """
    spec = formal_spec(language)
    _check_int("batch_size", batch_size, 1)
    _check_int("min_len", min_len, 1)
    _check_int("max_len", max_len, min_len)
    step = _length_step(language)
    lengths = list(range(-(-min_len // step) * step, max_len + 1, step))
    if not lengths:
        raise ValueError(f"max_len: no length of {language} in [{min_len}, {max_len}]")
    choice = torch.randint(len(lengths), (batch_size,), generator=generator).tolist()
    strings = tuple(_sample_string(language, lengths[i], generator) for i in choice)
    width = max(len(s) for s in strings) + 1
    inputs = torch.full((batch_size, width), PAD, dtype=torch.long)
    labels = torch.zeros(batch_size, width, spec.num_labels)
    mask = torch.zeros(batch_size, width, dtype=torch.bool)
    symbols = [*spec.alphabet, "$"]
    for b, s in enumerate(strings):
        inputs[b, 0] = BOS
        inputs[b, 1 : len(s) + 1] = torch.tensor([3 + spec.alphabet.index(c) for c in s])
        for t, valid in enumerate(valid_next_sets(language, s)):
            labels[b, t] = torch.tensor([float(c in valid) for c in symbols])
        mask[b, : len(s) + 1] = True
    lens = torch.tensor([len(s) for s in strings], dtype=torch.long)
    return FormalBatch(inputs, labels, mask, lens, strings)


# --------------------------------------------------------------------------- passkey
_FILLER = (
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
)


def passkey_batch(
    batch_size: int,
    seq_len: int,
    generator: torch.Generator,
    *,
    num_digits: int = 5,
) -> TaskBatch:
    """Passkey retrieval, byte-level (UTF-8 ids, vocabulary 256).

    Each sequence is filler text with ``" The pass key is DDDDD. Remember it. "`` inserted at a
    uniform position, ending in ``"What is the pass key? The pass key is DDDDD"``. ``inputs`` are
    the first ``seq_len`` bytes and ``targets`` the next bytes (shifted by one); ``mask`` marks the
    positions whose target is one of the final answer digits.

    Raises:
        ValueError: ``num_digits`` out of ``[1, 18]`` or ``seq_len`` too short for the texts.
    """
    _check_int("batch_size", batch_size, 1)
    _check_int("num_digits", num_digits, 1)
    if num_digits > 18:
        raise ValueError(f"num_digits must be <= 18 (got {num_digits})")
    question = "What is the pass key? The pass key is "
    needle_len = len(" The pass key is . Remember it. ") + num_digits
    minimum = needle_len + len(question) + num_digits + 16
    _check_int("seq_len", seq_len, minimum)
    total = seq_len + 1
    rows = []
    for _ in range(batch_size):
        digits = "".join(
            str(d) for d in torch.randint(10, (num_digits,), generator=generator).tolist()
        )
        needle = f" The pass key is {digits}. Remember it. "
        tail = question + digits
        n_fill = total - len(needle) - len(tail)
        filler = (_FILLER * (n_fill // len(_FILLER) + 1))[:n_fill]
        at = _randint(0, n_fill, generator)
        rows.append(encode(filler[:at] + needle + filler[at:] + tail))
    seq = torch.stack(rows)
    mask = torch.zeros(batch_size, seq_len, dtype=torch.bool)
    mask[:, seq_len - num_digits :] = True
    return TaskBatch(seq[:, :-1].contiguous(), seq[:, 1:].contiguous(), mask)
