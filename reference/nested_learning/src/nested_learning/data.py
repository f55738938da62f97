"""Training data: a byte-level text corpus split into train and validation streams.

REPLACE OR EXTEND THIS for your paper's data. The default needs no download: the standard library's
``pydoc_data.topics`` (about 465k characters of English text about Python) is used when no path is
given. Tokens are UTF-8 bytes (vocabulary 256), so there is no tokenizer to train or ship.
"""

from __future__ import annotations

from pathlib import Path

import torch

VOCAB_SIZE = 256


def default_corpus() -> str:
    """The embedded default corpus: the text of Python's help topics (ships with CPython)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def load_text(path: str | Path | None) -> str:
    """Read a UTF-8 text file, or return the default corpus when ``path`` is None."""
    if path is None:
        return default_corpus()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}; set data.path to a UTF-8 text file")
    return path.read_text(encoding="utf-8", errors="replace")


def encode(text: str) -> torch.Tensor:
    """Text → UTF-8 byte ids ``[N]`` (int64)."""
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


def decode(tokens: torch.Tensor | list[int]) -> str:
    """Byte ids → text (invalid UTF-8 sequences become U+FFFD)."""
    values = tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens
    return bytes(int(t) % VOCAB_SIZE for t in values).decode("utf-8", errors="replace")


class TextDataset:
    """Random contiguous windows from a token stream, split into train and validation parts."""

    def __init__(self, text: str, val_fraction: float = 0.1) -> None:
        tokens = encode(text)
        n_val = max(1, int(len(tokens) * val_fraction))
        self.splits = {"train": tokens[:-n_val], "val": tokens[-n_val:]}

    def get_batch(
        self,
        split: str,
        batch_size: int,
        seq_len: int,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-token targets, both ``[batch_size, seq_len]`` int64 on ``device``."""
        data = self.splits[split]
        if len(data) <= seq_len + 1:
            raise ValueError(
                f"the {split} split has {len(data)} tokens, fewer than seq_len + 1 = "
                f"{seq_len + 1}; use more text or a shorter train.seq_len"
            )
        starts = torch.randint(len(data) - seq_len - 1, (batch_size,), generator=generator)
        x = torch.stack([data[s : s + seq_len] for s in starts.tolist()])
        y = torch.stack([data[s + 1 : s + 1 + seq_len] for s in starts.tolist()])
        return x.to(device), y.to(device)
