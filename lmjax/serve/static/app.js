// The page of `lmjax serve`: plain DOM code over the server's /v1 and /api routes (nothing fetched elsewhere).
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = ["#fde68a", "#a7f3d0", "#bfdbfe", "#fbcfe8", "#ddd6fe", "#fed7aa"];
let info = null;
let conversation = [];  // OpenAI messages; assistant ones carry their protocol `parts`

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "style") node.style.cssText = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function post(path, body) {
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

function visible(text) {  // whitespace made visible in token pieces
  return text.replace(/\n/g, "↵\n").replace(/ /g, "·");
}

// ---- tabs and facts
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    document.querySelectorAll(".tab, .panel").forEach((n) => n.classList.remove("active"));
    tab.classList.add("active");
    $(tab.dataset.tab).classList.add("active");
  });
}

async function loadInfo() {
  info = await (await fetch("/api/info")).json();
  $("info").textContent = `${info.model} · step ${info.step} · ${info.layers} layers × ${info.heads} heads, ` +
    `d=${info.embed_dim}, vocab ${info.vocab_size}, context ${info.context} · tools: ${info.tools.join(", ")}`;
  $("chat-max").max = info.context;
}

// ---- chat
function renderParts(node, parts, text) {
  node.replaceChildren();
  if (!parts) { node.append(text); return; }
  for (const part of parts) {
    if (part.type === "text") node.append(part.text);
    else if (part.type === "tool_call") node.append(el("span", {class: "tool-call"}, `[${part.tool}] ${part.input}`));
    else node.append(el("span", {class: "tool-output"}, `→ ${part.output}`));
  }
}

function addMessage(role, text) {
  const node = el("div", {class: `msg ${role}`}, text);
  $("messages").append(node);
  return node;
}

async function* serverSentEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

async function sendChat(event) {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  showError("");
  conversation.push({role: "user", content: text});
  addMessage("user", text);
  const node = addMessage("assistant", "…");
  const system = $("chat-system").value.trim();
  const messages = (system ? [{role: "system", content: system}] : []).concat(conversation);
  const body = {model: info.model, messages, stream: true, temperature: Number($("chat-temp").value)};
  if ($("chat-max").value) body.max_tokens = Number($("chat-max").value);
  $("chat-send").disabled = true;
  let content = "", parts = [], finish = null;
  try {
    const response = await fetch("/v1/chat/completions", {method: "POST", headers: {"Content-Type": "application/json"},
                                                          body: JSON.stringify(body)});
    if (!response.ok) throw new Error((await response.json()).error.message);
    for await (const chunk of serverSentEvents(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices[0];
      content += choice.delta.content || "";
      parts = choice.parts || parts;
      finish = choice.finish_reason || finish;
      renderParts(node, parts.length ? parts : null, content || "…");
    }
    conversation.push({role: "assistant", content, parts});
    if (finish === "length") node.append(el("div", {class: "note"}, "(cut at max tokens)"));
  } catch (e) {
    conversation.pop();
    node.remove();
    showError(e.message);
  } finally {
    node.dataset.done = "1";
    $("chat-send").disabled = false;
  }
}

$("chat-form").addEventListener("submit", sendChat);
$("chat-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("chat-form").requestSubmit(); }
});
$("chat-clear").addEventListener("click", () => { conversation = []; $("messages").replaceChildren(); });

// ---- tokens
async function showTokens() {
  showError("");
  try {
    const view = await post("/api/tokens", {text: $("tokens-input").value, as_chat: $("tokens-chat").checked});
    $("tokens-stats").textContent = `${view.count} tokens, ${view.bytes} bytes, ` +
      `${view.bytes_per_token.toFixed(2)} bytes per token`;
    $("tokens-out").replaceChildren(...view.tokens.map((t, n) => el("span", {
      class: "tok" + (t.special ? " special" : ""), title: `id ${t.id} · piece ${JSON.stringify(t.piece)}`,
      style: `background:${COLOURS[n % COLOURS.length]}`}, t.special ? t.text : visible(t.text))));
    $("tokens-ids").textContent = "[" + view.tokens.map((t) => t.id).join(", ") + "]";
  } catch (e) { showError(e.message); }
}
$("tokens-go").addEventListener("click", showTokens);

// ---- next token
function heatColour(p) { return `hsl(${Math.round(120 * p)}, 75%, 72%)`; }

async function showNext() {
  showError("");
  try {
    const view = await post("/api/next", {prompt: $("next-prompt").value, top_k: Number($("next-topk").value),
                                          temperature: Number($("next-temp").value), continuation: $("next-cont").value});
    $("next-bars").replaceChildren(...view.top.map((r) => el("div", {class: "bar-row"},
      el("span", {class: "bar-label", title: `id ${r.id}`}, JSON.stringify(r.text)),
      el("span", {class: "bar", style: `width:${Math.max(1, 400 * r.probability)}px`}),
      `${(100 * r.probability).toFixed(2)}%`)));
    $("next-heat").replaceChildren(...view.continuation.map((r) => el("span", {
      class: "heat", title: `id ${r.id}: ${(100 * r.probability).toFixed(2)}%`,
      style: `background:${heatColour(r.probability)}`}, visible(r.text))));
  } catch (e) { showError(e.message); }
}
$("next-go").addEventListener("click", showNext);
$("next-temp").addEventListener("input", () => { $("next-temp-value").textContent = Number($("next-temp").value).toFixed(1); });

// ---- inside
function attentionMap(probs, labels) {
  const t = probs.length, cell = Math.max(4, Math.floor(160 / t));
  const canvas = el("canvas", {class: "attn-map", width: t * cell, height: t * cell});
  const ctx = canvas.getContext("2d");
  for (let q = 0; q < t; q++) {
    for (let k = 0; k < t; k++) {
      ctx.fillStyle = `rgba(47, 129, 247, ${probs[q][k]})`;
      ctx.fillRect(k * cell, q * cell, cell, cell);
    }
  }
  canvas.addEventListener("mousemove", (e) => {
    const q = Math.floor(e.offsetY / cell), k = Math.floor(e.offsetX / cell);
    if (q < t && k < t) canvas.title = `${JSON.stringify(labels[q])} → ${JSON.stringify(labels[k])}: ${(100 * probs[q][k]).toFixed(1)}%`;
  });
  return canvas;
}

function grid(labels, rowNames, cell) {
  const table = el("table", {class: "grid"});
  table.append(el("tr", {}, el("th", {}, ""), ...labels.map((l) => el("th", {}, visible(l)))));
  rowNames.forEach((name, r) => table.append(el("tr", {}, el("th", {}, name), ...labels.map((_, c) => cell(r, c)))));
  return table;
}

async function showInside() {
  showError("");
  try {
    const view = await post("/api/inside", {prompt: $("inside-prompt").value});
    const labels = view.tokens.map((t) => t.text);
    $("inside-attn").replaceChildren(...view.attention.map((heads, l) => el("div", {class: "layer"},
      el("span", {class: "layer-name"}, `layer ${l}`),
      ...heads.map((probs, h) => el("figure", {}, attentionMap(probs, labels), el("figcaption", {}, `head ${h}`))))));
    const rows = view.residual_norm.map((_, l) => (l === 0 ? "embed" : `after ${l - 1}`));
    const top = Math.max(...view.residual_norm.flat());
    $("inside-norm").replaceChildren(grid(labels, rows, (r, c) => {
      const v = view.residual_norm[r][c];
      return el("td", {style: `background:rgba(207, 34, 46, ${v / top})`, title: v.toFixed(3)}, v.toFixed(1));
    }));
    $("inside-lens").replaceChildren(grid(labels, rows, (r, c) => {
      const lens = view.lens[r][c];
      const tip = lens.texts.map((t, i) => `${JSON.stringify(t)} ${(100 * lens.probs[i]).toFixed(1)}%`).join("\n");
      return el("td", {style: `background:${heatColour(lens.probs[0])}`, title: tip}, visible(lens.texts[0]));
    }));
  } catch (e) { showError(e.message); }
}
$("inside-go").addEventListener("click", showInside);

loadInfo().catch((e) => showError(`cannot reach the server: ${e.message}`));
