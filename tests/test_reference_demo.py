"""The reference's Gradio demo, used by a person in a real headless Chromium.

Trains a tiny checkpoint with the reference's ``train.py``, starts ``demo/app.py`` on it, types a
prompt, presses the button, waits for the completion and the three plots, and saves a full-page
screenshot to ``test-artifacts/reference-demo.png``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ARTIFACTS, CHROMIUM_FLAGS, ROOT, http_server, run

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REFERENCE = ROOT / "reference" / "nested_learning"
SCREENSHOT = ARTIFACTS / "reference-demo.png"
PROMPT = "The for statement"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-step checkpoint of the small preset (short sequences: minutes on 2 CPU cores)."""
    out = tmp_path_factory.mktemp("reference-demo")
    run(
        ["uv", "run", "python", "train.py", "--config", "small", "--steps", "30",
         "--out-dir", str(out), "--set", "train.batch_size=4", "--set", "train.seq_len=64"],
        REFERENCE,
        timeout=1800,
    )  # fmt: skip
    assert (out / "checkpoint.pt").is_file()
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def demo_url(checkpoint: Path) -> Iterator[str]:
    cmd = ["uv", "run", "python", "demo/app.py", "--checkpoint", str(checkpoint)]
    with http_server(cmd, REFERENCE, timeout=180, GRADIO_ANALYTICS_ENABLED="False") as url:
        yield url


def test_a_person_generates_and_sees_the_memory_plots(demo_url: str) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(demo_url, wait_until="networkidle")
            assert "Loaded checkpoint.pt (step 30)" in page.content()
            page.get_by_label("Prompt").fill(PROMPT)
            page.get_by_label("New tokens").last.fill("16")  # the slider's number box
            page.get_by_role("button", name="Generate and analyse").click()
            output = page.get_by_label("Completion")
            page.wait_for_function(
                "([el, p]) => el.value.startsWith(p) && el.value.length > p.length",
                arg=[output.element_handle(), PROMPT],
                timeout=180_000,
            )
            page.get_by_text("Analysed").wait_for(timeout=60_000)
            # each gr.Plot shows its matplotlib figure as a raster data-URL image (icons are SVG)
            page.wait_for_function(
                "() => [...document.querySelectorAll('img')].filter(i => /^data:image\\/"
                "(png|webp|jpeg)/.test(i.src)).length >= 3",
                timeout=60_000,
            )
            completion = output.input_value()
            summary = page.get_by_text("Analysed").inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert completion.startswith(PROMPT) and len(completion) > len(PROMPT)
    assert "CMS level 1" in summary
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 50_000
