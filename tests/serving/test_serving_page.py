"""The web page at / in headless Chromium: type a sentence, read tokens and ids, switch the attention heatmap's
layer and head, fill a mask, compare sentences; checked against the API's (themselves tested) answers.

A screenshot is written to tmp_path, or to $BERTKIT_SCREENSHOT (how docs/serving-page.png is made)."""

import json
import os
from pathlib import Path

import httpx
import numpy as np
import pytest
from chromium import CHROMIUM, Chromium


@pytest.fixture()
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    chromium = Chromium()
    try:
        yield chromium
    finally:
        chromium.close()


def text_of(browser, selector: str) -> list[str]:
    return browser.evaluate(f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent)")


def set_and_submit(browser, field: str, value: str, button: str) -> None:
    browser.evaluate(f"document.getElementById({json.dumps(field)}).value = {json.dumps(value)}; "
                     f"document.getElementById({json.dumps(button)}).click(); true")


def test_page_shows_tokens_attention_similarity(browser, minilm_server, tmp_path):
    api = httpx.Client(base_url=minilm_server.http_url, timeout=60)
    browser.open(minilm_server.http_url + "/")
    browser.wait_for("document.body.dataset.ready === 'true'")
    assert "6 layers × 12 heads" in browser.evaluate("document.getElementById('model-info').textContent")

    sentence = "Tokenizers split unaffable words."
    expected = api.post("/tokenize", json={"text": sentence}).json()
    n = len(expected["tokens"])
    set_and_submit(browser, "text", sentence, "analyse")
    browser.wait_for(f"document.querySelectorAll('#tokens .token').length === {n}")
    assert text_of(browser, "#tokens .piece") == expected["tokens"]
    assert text_of(browser, "#tokens .id") == [str(i) for i in expected["ids"]]

    browser.wait_for(f"document.getElementById('attention-map').dataset.size === '{n}'")
    browser.evaluate("const l = document.getElementById('layer'); l.value = '4'; l.dispatchEvent(new Event('change'));"
                     "const h = document.getElementById('head'); h.value = '7'; h.dispatchEvent(new Event('change'));"
                     "true")
    canvas = browser.evaluate("({...document.getElementById('attention-map').dataset})")
    assert canvas == {"layer": "4", "head": "7", "size": str(n)}
    grid = np.array(api.post("/attention", json={"text": sentence, "layer": 4, "head": 7}).json()["attention"][0][0])
    i, j = np.unravel_index(grid.argmax(), grid.shape)
    caption = browser.evaluate("document.getElementById('attention-caption').textContent")
    assert caption.startswith("layer 4, head 7") and f"{expected['tokens'][i]} → {expected['tokens'][j]}" in caption
    # the heatmap is drawn: the strongest cell is darker than the weakest
    pixel = ("(() => {{ const c = document.getElementById('attention-map'); const m = 78;"
             " const cell = Math.max(6, Math.floor((c.width - m) / {n}));"
             " return c.getContext('2d').getImageData(m + {j} * cell + 2, m + {i} * cell + 2, 1, 1).data[0]; }})()")
    k, q = np.unravel_index(grid.argmin(), grid.shape)
    assert browser.evaluate(pixel.format(n=n, i=i, j=j)) < browser.evaluate(pixel.format(n=n, i=k, j=q))

    sentences = ["A man is eating food.", "A man eats a meal.", "The stock market fell sharply."]
    set_and_submit(browser, "sentences", "\n".join(sentences), "compare")
    browser.wait_for("document.querySelectorAll('#similarity-matrix tr').length === 4")
    shown = [row.split("\t") for row in browser.evaluate(
        "[...document.querySelectorAll('#similarity-matrix tr')].slice(1).map(r => "
        "[...r.querySelectorAll('td')].map(td => td.textContent).join('\\t'))")]
    matrix = np.array(api.post("/similarity", json={"texts": sentences}).json()["matrix"])
    np.testing.assert_allclose(np.array(shown, dtype=float), matrix, atol=1e-3)
    assert matrix[0, 1] > matrix[0, 2]
    tei = api.post("/similarity", json={"inputs": {"source_sentence": sentences[0], "sentences": sentences[1:]}})
    np.testing.assert_allclose(np.array(shown, dtype=float)[0, 1:], tei.json(), atol=1e-3)  # what /embed gives
    assert "mean pooling, up to 256 tokens" in browser.evaluate(
        "document.getElementById('similarity-caption').textContent")

    # MiniLM has no masked-LM head: the panel says why instead of showing an error, and offers no form
    note = browser.evaluate("document.getElementById('no-mlm-head').textContent")
    assert "has no masked-LM head" in note and "bertkit serve --model DIR" in note
    assert browser.evaluate("document.getElementById('mask-form').hidden") is True
    assert browser.evaluate("document.querySelectorAll('#fill-mask .error').length") == 0

    long_text = " ".join(["word"] * 40)  # 42 tokens: the server shows 25 (-max_seq_len) and says so
    set_and_submit(browser, "text", long_text, "analyse")
    browser.wait_for("document.querySelectorAll('#tokens .token').length === 25")
    note = "only the first 25 of 42 tokens are shown"
    assert note in browser.evaluate("document.getElementById('tokens-note').textContent")
    browser.wait_for(f"document.getElementById('attention-caption').textContent.includes({json.dumps(note)})")
    set_and_submit(browser, "text", sentence, "analyse")
    browser.wait_for(f"document.querySelectorAll('#tokens .token').length === {n}")
    assert browser.evaluate("document.getElementById('tokens-note').textContent") == ""

    shot = browser.screenshot(Path(os.environ.get("BERTKIT_SCREENSHOT", tmp_path / "page.png")))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_fills_masks(browser, tiny_server):
    api = httpx.Client(base_url=tiny_server.http_url, timeout=60)
    browser.open(tiny_server.http_url + "/")
    browser.wait_for("document.body.dataset.ready === 'true'")
    text = "the cat sat on the [MASK] ."
    browser.evaluate("document.getElementById('top-k').value = '3'; true")
    set_and_submit(browser, "mask-text", text, "fill")
    browser.wait_for("document.querySelectorAll('#fill-mask .candidates li').length === 3")
    expected = api.post("/fill-mask", json={"text": text, "top_k": 3}).json()["masks"][0]["candidates"]
    assert text_of(browser, "#fill-mask .word") == [c["token"] for c in expected]
    assert text_of(browser, "#fill-mask .score") == [f"{c['score']:.3f}" for c in expected]


def test_page_shows_server_metrics(browser, minilm_server):
    """The metrics panel reads /metrics: request counts, latency, batch sizes, as Prometheus reports them."""
    api = httpx.Client(base_url=minilm_server.http_url, timeout=60)
    browser.open(minilm_server.http_url + "/")
    browser.wait_for("document.body.dataset.ready === 'true'")
    for texts in (["one text"], ["two", "texts"], ["three", "more", "texts"]):
        assert api.post("/embed", json={"inputs": texts}).status_code == 200
    assert api.post("/embed", json={"inputs": []}).status_code == 422
    seen = int(browser.evaluate("document.getElementById('metrics').dataset.updated || '0'"))
    browser.wait_for(f"Number(document.getElementById('metrics').dataset.updated) >= {seen + 2}", timeout_s=30)
    shown = browser.evaluate("Object.fromEntries([...document.querySelectorAll('[data-metric]')]"
                             ".map(e => [e.dataset.metric, e.textContent]))")
    metrics = {}
    for line in api.get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            metrics[name] = metrics.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    assert float(shown["requests"]) == metrics["te_request_count_total"] >= 4
    assert float(shown["answered"]) == metrics["te_request_success_total"]
    assert float(shown["failed"]) == metrics["te_request_failure_total"] >= 1
    assert float(shown["batches"]) == metrics["te_batch_next_size_count"] >= 3
    mean_size = metrics["te_batch_next_size_sum"] / metrics["te_batch_next_size_count"]
    assert shown["batch-size"] == f"{mean_size:.1f}"
    mean_latency = 1000 * metrics["te_request_duration_sum"] / metrics["te_request_duration_count"]
    assert shown["latency-mean"] == f"{mean_latency:.1f} ms"
    assert shown["latency-quantiles"].count(" ms") == 2 and shown["queue"] == "0 / 0"
    assert browser.evaluate("document.getElementById('key-form').hidden") is True
