from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from l2run.render.frame import PELVIS_MARKER, SKY
from l2run.render.replay_html import BROWSER_CAMERA, html_replay, write_html_replay

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_html_is_self_contained(recording) -> None:
    page = html_replay(recording)
    assert "/*L2RUN_RECORDING*/" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "network reference"
    assert "</script" not in page.split('id="l2run-data"', 1)[1].split("</script>", 1)[0]
    blob = page.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    data = json.loads(blob)
    assert len(data["time"]) == len(recording)
    assert data["header"]["metadata"]["seed"] == 7


def test_metadata_cannot_break_out_of_the_script(recording, tmp_path: Path) -> None:
    recording.header["metadata"]["note"] = "</script><script>alert(1)</script><!--"
    page = html_replay(recording)
    blob = page.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(blob)["header"]["metadata"]["note"].startswith("</script>")
    with pytest.raises(ValueError, match="html"):
        write_html_replay(recording, tmp_path / "x.txt")


def _canvas(page) -> np.ndarray:
    url = page.evaluate("document.getElementById('stage').toDataURL('image/png')")
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _marker_centre(img: np.ndarray) -> np.ndarray:
    mask = np.all(np.abs(img - PELVIS_MARKER) <= 12, axis=-1)
    assert mask.sum() > 10, "pelvis marker not drawn"
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])


@pytest.mark.browser
def test_viewer_draws_and_figure_moves_in_chromium(recording, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("Debian chromium not installed (apt-get install -y chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    html = write_html_replay(recording, tmp_path / "episode.html")
    t0, t1 = 0, len(recording) - 1
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.as_uri())
            assert page.evaluate("window.l2run.frameCount") == len(recording)
            page.evaluate("window.l2run.setFollow(false)")  # fixed camera: the figure travels
            page.evaluate(f"window.l2run.seek({t0})")
            first = _canvas(page)
            page.evaluate(f"window.l2run.seek({t1})")
            last = _canvas(page)
            # frames counted from 0, as `l2run render --frame` counts them
            assert page.inner_text("#info").startswith(f"frame {t1} (0–{t1})")
            # scrubbing through the slider reaches the same frame
            page.fill("#scrub", str(t0))
            page.dispatch_event("#scrub", "input")
            assert page.evaluate("window.l2run.frame") == t0
            # play advances time
            page.evaluate("window.l2run.play()")
            page.wait_for_function("window.l2run.frame > 5", timeout=5000)
        finally:
            browser.close()
    assert not errors, errors
    assert first.shape == (BROWSER_CAMERA.height, BROWSER_CAMERA.width, 3)
    # non-blank: plenty of pixels that are not sky
    not_sky = np.any(np.abs(first - SKY) > 8, axis=-1).mean()
    assert not_sky > 0.05, f"canvas looks blank ({not_sky:.3f} non-sky)"
    # the pelvis marker sits where the pose says, and moves by the distance travelled
    pelvis = recording.body_xy("pelvis")
    centre_x = pelvis[0, 0]
    for img, t in ((first, t0), (last, t1)):
        expected = BROWSER_CAMERA.to_pixels(pelvis[t], centre_x)
        np.testing.assert_allclose(_marker_centre(img), expected, atol=2.0)
    moved = _marker_centre(last)[0] - _marker_centre(first)[0]
    assert moved > 0.5 * (pelvis[t1, 0] - pelvis[t0, 0]) * BROWSER_CAMERA.pixels_per_metre


def test_write_html_replay_refuses_a_folder_before_building_the_page(
    recording, tmp_path: Path, monkeypatch
) -> None:
    import l2run.render.replay_html as replay_html

    def must_not_build(*args, **kwargs):
        raise AssertionError("built the page for a target that cannot take it")

    monkeypatch.setattr(replay_html, "html_replay", must_not_build)
    folder = tmp_path / "page.html"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_html_replay(recording, folder)
    assert list(folder.iterdir()) == []
