// The page talks to the HTTP API only: /model, /tokenize, /attention, /fill-mask, /similarity, /metrics.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;
let attention = null; // the last /attention answer for the current sentence (every layer and head)

function headers() {
  const key = sessionStorage.getItem("bertkit-api-key");
  return key ? {"Authorization": `Bearer ${key}`} : {};
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {headers: headers()} : {
    method: "POST", headers: {...headers(), "content-type": "application/json"}, body: JSON.stringify(body),
  });
  if (response.status === 401) $("key-form").hidden = false;  // a server started with --api-key
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? (data.error.message || data.error) : response.statusText);
  return data;
}

// -- metrics: the Prometheus text of /metrics, parsed -----------------------------------------------------

function parseMetrics(text) {
  const series = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/);
    if (!m || line.startsWith("#")) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || "").matchAll(/(\w+)="([^"]*)"/g)) labels[k] = v;
    series.push({name: m[1], labels, value: Number(m[3])});
  }
  return series;
}

const total = (series, name) => series.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);

function quantileBound(series, name, q) {
  // the upper bound of the histogram bucket that holds the q-quantile
  const buckets = series.filter((s) => s.name === `${name}_bucket`)
    .map((s) => [s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), s.value]).sort((a, b) => a[0] - b[0]);
  const count = buckets.length ? buckets[buckets.length - 1][1] : 0;
  return count ? buckets.find(([, c]) => c >= q * count)[0] : null;
}

const ms = (seconds) => seconds === null ? "–" : seconds === Infinity ? "> 60 s" : `${(seconds * 1000).toFixed(1)} ms`;
const mean = (series, name) => total(series, `${name}_count`) ?
  total(series, `${name}_sum`) / total(series, `${name}_count`) : null;

async function refreshMetrics() {
  const response = await fetch("/metrics", {headers: headers()});
  if (!response.ok) return;
  const s = parseMetrics(await response.text());
  const batchSize = mean(s, "te_batch_next_size"), batchTokens = mean(s, "te_batch_next_tokens");
  const shown = {
    "requests": total(s, "te_request_count_total"),
    "answered": total(s, "te_request_success_total"),
    "failed": total(s, "te_request_failure_total"),
    "latency-mean": ms(mean(s, "te_request_duration")),
    "latency-quantiles": `${ms(quantileBound(s, "te_request_duration", 0.5))} / ` +
      `${ms(quantileBound(s, "te_request_duration", 0.99))}`,
    "batches": total(s, "te_batch_next_size_count"),
    "batch-size": batchSize === null ? "–" : batchSize.toFixed(1),
    "batch-tokens": batchTokens === null ? "–" : batchTokens.toFixed(1),
    "queue": `${total(s, "te_queue_size")} / ${total(s, "te_requests_in_flight")}`,
  };
  for (const [key, value] of Object.entries(shown)) {
    document.querySelector(`[data-metric="${key}"]`).textContent = String(value);
  }
  $("metrics").dataset.updated = String(Number($("metrics").dataset.updated || 0) + 1);
}

function showError(element, error) {
  element.innerHTML = "";
  const p = document.createElement("p");
  p.className = "error";
  p.textContent = error.message;
  element.appendChild(p);
}

function fillSelect(select, count) {
  select.innerHTML = "";
  for (let i = 0; i < count; i++) select.add(new Option(String(i), String(i)));
}

async function loadModel() {
  model = await api("/model");
  $("model-info").textContent = `${model.name}: ${model.num_layers} layers × ${model.num_heads} heads, hidden ` +
    `${model.hidden_size}, up to ${model.max_tokens} tokens` + (model.has_mlm_head ? ", masked-LM head" : "");
  fillSelect($("layer"), model.num_layers);
  fillSelect($("head"), model.num_heads);
  if (!model.has_mlm_head) {  // a sentence-embedding model: say why there is nothing to fill, not an error
    $("mask-form").hidden = true;
    const note = document.createElement("p");
    note.className = "note";
    note.id = "no-mlm-head";
    note.textContent = `${model.name} has no masked-LM head (it was trained for sentence vectors, not to guess ` +
      "words), so it cannot fill masks. Serve a checkpoint with one (bertkit serve --model DIR) to use this panel.";
    $("fill-mask").replaceChildren(note);
  }
}

function cutNote(answer) {
  // the server looks at the first max_tokens tokens; say so when a text is longer
  return answer.total_tokens > answer.max_tokens ?
    `only the first ${answer.max_tokens} of ${answer.total_tokens} tokens are shown (the server's limit, ` +
    "-max_seq_len)" : "";
}

async function analyse() {
  const text = $("text").value;
  try {
    const [tokens, maps] = await Promise.all([api("/tokenize", {text}), api("/attention", {text})]);
    const box = $("tokens");
    box.innerHTML = "";
    tokens.tokens.forEach((piece, i) => {
      const chip = document.createElement("span");
      chip.className = "token" + (/^\[(CLS|SEP|PAD|MASK|UNK)\]$/.test(piece) ? " special" : "");
      chip.innerHTML = `<span class="piece"></span><span class="id"></span>`;
      chip.querySelector(".piece").textContent = piece;
      chip.querySelector(".id").textContent = tokens.ids[i];
      box.appendChild(chip);
    });
    $("tokens-note").textContent = cutNote(tokens);
    attention = maps;
    drawAttention();
  } catch (error) {
    showError($("tokens"), error);
  }
}

function drawAttention() {
  if (!attention) return;
  const layer = Number($("layer").value), head = Number($("head").value);
  const grid = attention.attention[layer][head];
  const tokens = attention.tokens, n = tokens.length;
  const canvas = $("attention-map"), ctx = canvas.getContext("2d");
  const margin = 78, cell = Math.max(6, Math.floor((canvas.width - margin) / n));
  canvas.height = margin + cell * n;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px ui-monospace, monospace";
  ctx.fillStyle = "#1d2430";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  tokens.forEach((t, i) => ctx.fillText(t.slice(0, 10), margin - 4, margin + i * cell + cell / 2));
  tokens.forEach((t, j) => {
    ctx.save();
    ctx.translate(margin + j * cell + cell / 2, margin - 4);
    ctx.rotate(-Math.PI / 2.6);
    ctx.textAlign = "left";
    ctx.fillText(t.slice(0, 10), 0, 0);
    ctx.restore();
  });
  let strongest = [0, 0, -1];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const p = grid[i][j];
      if (p > strongest[2]) strongest = [i, j, p];
      const shade = Math.round(255 * (1 - Math.sqrt(p)));
      ctx.fillStyle = `rgb(${shade}, ${Math.round(shade * 0.9 + 25)}, 255)`;
      ctx.fillRect(margin + j * cell, margin + i * cell, cell - 1, cell - 1);
    }
  }
  canvas.dataset.layer = layer;
  canvas.dataset.head = head;
  canvas.dataset.size = n;
  const cut = cutNote(attention);
  $("attention-caption").textContent = `layer ${layer}, head ${head}: rows attend to columns; strongest ` +
    `${tokens[strongest[0]]} → ${tokens[strongest[1]]} (${strongest[2].toFixed(2)})` + (cut ? `; ${cut}` : "");
}

async function fillMask() {
  const box = $("fill-mask");
  try {
    const result = await api("/fill-mask", {text: $("mask-text").value, top_k: Number($("top-k").value)});
    box.innerHTML = "";
    result.masks.forEach((mask, k) => {
      const title = document.createElement("div");
      title.textContent = `[MASK] #${k + 1} (token ${mask.position})`;
      const list = document.createElement("ul");
      list.className = "candidates";
      mask.candidates.forEach((c) => {
        const item = document.createElement("li");
        item.innerHTML = `<span class="word"></span><span class="bar"></span><span class="score"></span>`;
        item.querySelector(".word").textContent = c.token;
        item.querySelector(".bar").style.width = `${Math.max(2, Math.round(c.score * 220))}px`;
        item.querySelector(".score").textContent = c.score.toFixed(3);
        list.appendChild(item);
      });
      box.append(title, list);
    });
  } catch (error) {
    showError(box, error);
  }
}

async function compare() {
  const box = $("similarity");
  const texts = $("sentences").value.split("\n").map((s) => s.trim()).filter(Boolean);
  try {
    const result = await api("/similarity", {texts});
    const table = document.createElement("table");
    table.id = "similarity-matrix";
    const head = table.insertRow();
    head.appendChild(document.createElement("th"));
    texts.forEach((_, j) => { const th = document.createElement("th"); th.textContent = `[${j}]`; head.appendChild(th); });
    result.matrix.forEach((row, i) => {
      const tr = table.insertRow();
      const th = document.createElement("th");
      th.textContent = `[${i}] ${texts[i]}`;
      th.title = texts[i];
      tr.appendChild(th);
      row.forEach((value) => {
        const td = tr.insertCell();
        td.textContent = value.toFixed(3);
        const light = Math.round(100 - 45 * Math.max(0, value));
        td.style.background = `hsl(220, 80%, ${light}%)`;
        if (light < 70) td.style.color = "#fff";
      });
    });
    const caption = document.createElement("p");
    caption.className = "caption";
    caption.id = "similarity-caption";
    caption.textContent = `cosines of the model's own sentence vectors (${result.pooling} pooling, up to ` +
      `${result.max_seq_length} tokens), as bertkit encode and /embed give them` +
      (result.truncated_inputs ? `; ${result.truncated_inputs} text(s) cut to ${result.max_seq_length} tokens` : "");
    box.replaceChildren(table, caption);
  } catch (error) {
    showError(box, error);
  }
}

function onSubmit(id, action) {
  $(id).addEventListener("submit", (event) => { event.preventDefault(); action(); });
}

async function start() {
  onSubmit("text-form", analyse);
  onSubmit("mask-form", fillMask);
  onSubmit("similarity-form", compare);
  $("layer").addEventListener("change", drawAttention);
  $("head").addEventListener("change", drawAttention);
  onSubmit("key-form", () => { sessionStorage.setItem("bertkit-api-key", $("api-key").value); location.reload(); });
  refreshMetrics();
  setInterval(refreshMetrics, 2000);
  try {
    await loadModel();
  } catch (error) {
    $("model-info").textContent = `cannot reach the API: ${error.message}`;
    return;
  }
  await Promise.all([analyse(), model.has_mlm_head ? fillMask() : null, compare()]);
  document.body.dataset.ready = "true";
}

start();
