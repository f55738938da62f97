"""The demo: nested_learning.inspection against independent computations, the app over HTTP."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

gr = pytest.importorskip("gradio")

from demo.app import build_demo  # noqa: E402
from nested_learning.data import encode  # noqa: E402
from nested_learning.inspection import (  # noqa: E402
    Plant,
    analyze_tokens,
    cms_updates,
    load_model,
    next_token_loss,
    probe_recall,
    single_thread,
    trace_main_memory,
)
from nested_learning.models import HopeLM, create_model  # noqa: E402

TINY = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "max_seq_len": 128,
        "titans_chunk_memory": 8, "titans_chunk_other": 8, "cms_chunk_sizes": [16, 32]}  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with single_thread():
        yield


def tiny(**overrides: object) -> HopeLM:
    torch.manual_seed(0)
    model = create_model(**{**TINY, **overrides})
    assert isinstance(model, HopeLM)
    return model.eval()


def test_without_a_checkpoint_it_says_how_to_train(tmp_path: Path) -> None:
    _, _, status = load_model(tmp_path / "missing.pt")
    assert "UNTRAINED" in status and "train.py --config small" in status


def test_loads_a_checkpoint_written_by_training(tmp_path: Path, tiny_train_args: list[str]) -> None:
    import train

    model_args = [f"--set=model.{k}={json.dumps(v)}" for k, v in TINY.items()]
    assert train.main([*tiny_train_args, *model_args, "--steps", "2"]) == 0
    model, context, status = load_model(tmp_path / "run" / "checkpoint.pt")
    assert "step 2" in status and context == TINY["max_seq_len"] and isinstance(model, HopeLM)


def test_next_token_loss_is_the_cross_entropy() -> None:
    logits, tokens = torch.randn(10, 256), torch.randint(0, 256, (10,))
    expected = F.cross_entropy(logits[:-1], tokens[1:], reduction="none").numpy()
    got = next_token_loss(logits, tokens)
    assert torch.isnan(torch.tensor(got[0])) and got[1:] == pytest.approx(expected, abs=1e-6)


def test_tracing_does_not_change_the_outputs() -> None:
    model, x = tiny(), torch.randint(0, 256, (1, 48))
    with torch.no_grad():
        plain = model(x)
        with trace_main_memory(model) as trace:
            traced = model(x)
    torch.testing.assert_close(traced, plain, rtol=0, atol=0)
    assert len(trace.chunks) == TINY["n_layers"] and all(trace.chunks)


@pytest.mark.parametrize("inner_lr", [1e-2, 0.0])
def test_cms_update_positions_follow_the_chunk_sizes(inner_lr: float) -> None:
    model, x = tiny(cms_inner_lr=inner_lr), torch.randint(0, 256, (1, 96))
    states: list = []  # type: ignore[type-arg]
    with torch.no_grad():
        model.forward_online(x, trace=states)
    positions, sizes = cms_updates(model, states)
    if inner_lr == 0:
        assert positions == [[], []]  # a frozen CMS never changes
    else:
        assert positions == [[16, 32, 48, 64, 80, 96], [32, 64, 96]]
        assert all(s > 0 for level in sizes for s in level)


def test_recall_probes_equal_separate_forward_passes() -> None:
    model, plant = tiny(), Plant.parse("pin=4721")
    assert plant is not None
    tokens = encode(plant.line + "The for statement repeats a block of code.")
    kept, scores = probe_recall(model, tokens, plant, [8, 16, 24], context=128)
    assert kept == [8, 16, 24]
    for p, score in zip(kept, scores, strict=True):
        row = torch.cat([tokens[:p], encode(plant.probe), encode(plant.value)])
        with torch.no_grad():
            logp = torch.log_softmax(model(row[None])[0], -1)
        first = p + len(plant.probe)
        value = encode(plant.value)
        expected = logp[first - 1 : first - 1 + len(value)].gather(1, value[:, None]).mean()
        assert score == pytest.approx(float(expected), abs=1e-5)


def test_analysis_of_a_text_is_complete_and_finite() -> None:
    model, plant = tiny(), Plant.parse("pin=4721")
    tokens = encode("pin=4721\n" + "The for statement repeats a block of code. " * 2)
    a = analyze_tokens(model, tokens, 20, plant, context=128)
    assert a.first_nonfinite is None and a.inner_loss is not None and a.retention is not None
    assert a.inner_loss.shape == (TINY["n_layers"], len(tokens)) and a.probe_positions
    assert a.cms_updates == [[16, 32, 48, 64, 80], [32, 64]]  # 95 tokens: C = 16 and 32


def test_a_fact_without_equals_sign_is_refused() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        Plant.parse("no equals sign")


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


def call(server: str, api: str, data: list[object]) -> list[object]:
    body = json.dumps({"data": data}).encode()
    request = urllib.request.Request(f"{server}gradio_api/call/{api}", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{server}gradio_api/call/{api}/{event_id}", timeout=120) as r:
        stream = r.read().decode()
    lines = [line for line in stream.splitlines() if line.startswith("data:")]
    result: list[object] = json.loads(lines[-1][len("data:") :])
    return result


@pytest.mark.parametrize(
    ("api", "data"),
    [("generate", ["The for", "pin=4721", 4, 0.0, 0]), ("analyze", ["The for", "pin=4721"])],
)
def test_both_buttons_answer_over_http(server: str, api: str, data: list[object]) -> None:
    completion, surprise, cms, recall, summary = call(server, api, data)
    assert isinstance(completion, str) and completion.startswith("The for")
    assert all(plot is not None for plot in (surprise, cms, recall)) and summary


def test_the_app_is_only_the_interface() -> None:
    """The model-facing logic lives in nested_learning.inspection; demo/app.py plots and serves."""
    source = (Path(__file__).resolve().parents[1] / "demo" / "app.py").read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert len(source.splitlines()) < 300
    assert not [i for i in imports if "torch" in i or ".core" in i or ".models" in i], imports
