"""The Gradio demo: built by its factory, answering over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio")

from demo.app import build_demo, load_model  # noqa: E402


def test_without_a_checkpoint_it_says_how_to_train(tmp_path: Path) -> None:
    _, _, status = load_model(tmp_path / "missing.pt")
    assert "UNTRAINED" in status and "train.py --config small" in status


def test_loads_a_checkpoint_written_by_training(tmp_path: Path) -> None:
    import train

    args = [
        "--steps",
        "2",
        "--device",
        "cpu",
        "--out-dir",
        str(tmp_path),
        "--set",
        "train.seq_len=16",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.eval_batches=1",
    ]
    assert train.main(args) == 0
    _, context, status = load_model(tmp_path / "checkpoint.pt")
    assert (
        "step 2" in status
        and context == train.build_config(train.parse_args([])).model["max_seq_len"]
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_demo(tmp_path / "none.pt")
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_generate_over_http(server: str) -> None:
    body = json.dumps({"data": ["Hello", 5, 0.0, 0]}).encode()
    request = urllib.request.Request(
        f"{server}gradio_api/call/generate", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{server}gradio_api/call/generate/{event_id}", timeout=60) as r:
        stream = r.read().decode()
    data_lines = [line for line in stream.splitlines() if line.startswith("data:")]
    completion = json.loads(data_lines[-1][len("data:") :])[0]
    assert completion.startswith("Hello") and len(completion) > len("Hello")
