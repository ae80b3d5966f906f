/*
 * Messenger gateway chat widget. Dependency-free; embed with
 *   <script src="https://gateway.example.com/widget/widget.js" async
 *           data-title="Support" data-greeting="Hi!" data-position="right" data-color="#2563eb"></script>
 * Public API: window.GatewayWidget.{open, close, identify, on, resetVisitor}.
 */
(function () {
  "use strict";
  if (window.GatewayWidget) return; // included twice

  const TOKEN_KEY = "gw_visitor_token";
  const UNREAD_KEY = "gw_unread";
  const PENDING_KEY = "gw_pending";
  const MAX_LEN = 4000;
  const TYPING_EVERY_MS = 3000;
  const OPERATOR_TYPING_MS = 8000; // a "typing" frame shows the hint this long, or until the message lands
  const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;

  // ---- configuration from our own <script> tag -------------------------------------------
  const script = document.currentScript || Array.from(document.querySelectorAll("script[src]"))
    .find((s) => /\/widget\/widget\.js(?:[?#].*)?$/.test(s.src));
  const data = (script && script.dataset) || {};
  const scriptUrl = new URL(script ? script.src : "/widget/widget.js", location.href);
  const WS_URL = (scriptUrl.protocol === "https:" ? "wss://" : "ws://") + scriptUrl.host + "/channels/webwidget/ws";
  const cfg = {
    title: data.title || "Chat with us",
    greeting: data.greeting || "",
    left: data.position === "left",
    color: data.color && window.CSS && CSS.supports("color", data.color) ? data.color : "",
  };

  // ---- storage (may throw in private modes and sandboxed iframes) --------------------------
  function load(area, key) {
    try { return window[area].getItem(key); } catch (e) { return null; }
  }
  function store(area, key, value) {
    try {
      if (value == null) window[area].removeItem(key); else window[area].setItem(key, value);
    } catch (e) { /* storage unavailable: the widget still works for this page view */ }
  }
  function loadPending() {
    try {
      const list = JSON.parse(load("sessionStorage", PENDING_KEY) || "[]");
      return Array.isArray(list) ? list.filter((p) => p && p.client_id && typeof p.text === "string") : [];
    } catch (e) { return []; }
  }

  // ---- state --------------------------------------------------------------------------------
  let sock = null;          // current WebSocket (null while disconnected)
  let ready = false;        // welcome received on the current socket
  let stopped = false;      // server refused us for good (close code 4003)
  let attempt = 0;
  let retryTimer = 0;
  let welcomeTimer = 0;
  let noticeTimer = 0;
  let typingTimer = 0;
  let hiddenAt = 0;
  let lastTypingAt = 0;
  let lastPageUrl = "";
  let pendingIdentify = null;
  let unread = parseInt(load("localStorage", UNREAD_KEY), 10) || 0;
  let pending = loadPending(); // [{client_id, text, created_at, failed?}] in send order
  const seen = new Set();      // server ids already rendered
  let unseen = [];             // ids of operator messages that arrived while the chat was not in view
  const listeners = {};

  // ---- UI -------------------------------------------------------------------------------------
  const CSS_TEXT = `
:host { all: initial; }
[hidden] { display: none !important; }
.gw-wrap { --gw-accent: #2563eb; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; }
.gw-wrap * { box-sizing: border-box; }
#gw-launcher { position: fixed; bottom: 20px; right: 20px; z-index: 2147483000; width: 56px; height: 56px; border: 0;
  border-radius: 50%; background: var(--gw-accent); color: #fff; cursor: pointer; box-shadow: 0 6px 20px rgba(0,0,0,.25);
  display: flex; align-items: center; justify-content: center; transition: transform .15s; }
#gw-launcher:hover { transform: scale(1.06); }
#gw-launcher:focus-visible, .gw-wrap button:focus-visible { outline: 3px solid rgba(37,99,235,.45); outline-offset: 2px; }
#gw-badge { position: absolute; top: -4px; right: -4px; min-width: 20px; height: 20px; padding: 0 5px; border-radius: 10px;
  background: #e5484d; color: #fff; font-size: 12px; font-weight: 600; line-height: 20px; text-align: center; }
#gw-panel { position: fixed; bottom: 88px; right: 20px; z-index: 2147483001; width: 360px; height: min(560px, calc(100vh - 110px));
  display: flex; flex-direction: column; background: #fff; border-radius: 14px; overflow: hidden;
  box-shadow: 0 12px 40px rgba(0,0,0,.22); }
.gw-left #gw-launcher, .gw-left #gw-panel { right: auto; left: 20px; }
.gw-head { display: flex; align-items: center; gap: 8px; padding: 14px 16px; background: var(--gw-accent); color: #fff; }
.gw-head > div { flex: 1; min-width: 0; }
#gw-title { font-size: 16px; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#gw-status { font-size: 12px; opacity: .85; }
#gw-status[data-state="online"] { display: none; }
#gw-close { border: 0; background: transparent; color: inherit; font-size: 24px; line-height: 1; cursor: pointer; padding: 2px 6px; border-radius: 6px; }
#gw-close:hover { background: rgba(255,255,255,.15); }
#gw-messages { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 8px; background: #f7f8fa; }
.gw-msg, .gw-greeting { max-width: 82%; }
.gw-text { padding: 8px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
.gw-visitor { align-self: flex-end; text-align: right; }
.gw-visitor .gw-text { background: var(--gw-accent); color: #fff; border-bottom-right-radius: 4px; text-align: left; }
.gw-operator, .gw-greeting { align-self: flex-start; }
.gw-operator .gw-text, .gw-greeting .gw-text { background: #fff; border: 1px solid #e4e7eb; border-bottom-left-radius: 4px; }
.gw-operator a { color: var(--gw-accent); }
.gw-system { align-self: center; max-width: 90%; text-align: center; }
.gw-system .gw-text { padding: 2px 8px; color: #6b7280; font-size: 12px; }
.gw-author { font-size: 12px; font-weight: 600; color: #4b5563; margin: 0 0 2px 4px; }
.gw-meta { font-size: 11px; color: #8b949e; margin: 2px 4px 0; }
.gw-quote { font-size: 12px; color: #6b7280; border-left: 3px solid #d1d5db; padding-left: 6px; margin: 0 0 2px 4px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.gw-pending .gw-text { opacity: .6; }
.gw-failed .gw-text { background: #fff; color: #b42318; border: 1px solid #e5484d; }
.gw-stars { display: flex; gap: 6px; justify-content: center; margin: 6px 0; }
.gw-star { min-width: 34px; padding: 6px 10px; border: 1px solid #d0d7de; border-radius: 8px; background: #fff; font: inherit; cursor: pointer; }
.gw-star:hover { border-color: var(--gw-accent); color: var(--gw-accent); }
.gw-field { width: 100%; margin: 4px 0; padding: 6px 8px; border: 1px solid #d0d7de; border-radius: 8px; font: inherit; }
.gw-retry { border: 0; background: none; padding: 0; color: #b42318; font: inherit; text-decoration: underline; cursor: pointer; }
#gw-typing { padding: 4px 14px; font-size: 12px; color: #6b7280; background: #f7f8fa; }
#gw-notice { padding: 6px 14px; font-size: 12px; background: #fff7e6; color: #8a5a00; border-top: 1px solid #f5e0b3; }
.gw-compose { display: flex; align-items: flex-end; gap: 8px; padding: 10px 12px; border-top: 1px solid #e4e7eb; background: #fff; margin: 0; }
#gw-input { flex: 1; resize: none; border: 1px solid #d0d5dd; border-radius: 10px; padding: 8px 10px; max-height: 120px;
  font: inherit; color: inherit; background: #fff; outline: none; }
#gw-input:focus { border-color: var(--gw-accent); }
#gw-send { flex: none; width: 38px; height: 38px; border: 0; border-radius: 50%; background: var(--gw-accent); color: #fff;
  cursor: pointer; display: flex; align-items: center; justify-content: center; }
#gw-counter { font-size: 11px; color: #8b949e; text-align: right; padding: 0 14px 6px; background: #fff; }
#gw-counter.gw-full { color: #b42318; }
@media (max-width: 480px) {
  #gw-panel, .gw-left #gw-panel { inset: 0; width: 100%; height: 100%; border-radius: 0; }
  #gw-input { font-size: 16px; } /* smaller makes iOS Safari zoom into the page */
}`;
  // Static markup only: message text never goes through innerHTML.
  const TEMPLATE = `
<div class="gw-wrap">
  <button id="gw-launcher" type="button" aria-label="Open chat" aria-expanded="false" aria-controls="gw-panel">
    <svg width="26" height="26" viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>
    <span id="gw-badge" hidden></span>
  </button>
  <section id="gw-panel" role="dialog" aria-modal="false" aria-labelledby="gw-title" hidden>
    <header class="gw-head">
      <div><div id="gw-title"></div><div id="gw-status" role="status" data-state="connecting">connecting…</div></div>
      <button id="gw-close" type="button" aria-label="Close chat">&times;</button>
    </header>
    <div id="gw-messages" aria-live="polite" aria-relevant="additions"></div>
    <div id="gw-typing" aria-live="polite" hidden>Operator is typing…</div>
    <div id="gw-notice" role="alert" hidden></div>
    <form class="gw-compose">
      <textarea id="gw-input" rows="1" maxlength="${MAX_LEN}" placeholder="Write a message…" aria-label="Message"></textarea>
      <button id="gw-send" type="submit" aria-label="Send message">
        <svg width="18" height="18" viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M3 20.5 21 12 3 3.5 3 10l12 2-12 2z"/></svg>
      </button>
    </form>
    <div id="gw-counter" aria-live="polite" hidden></div>
  </section>
</div>`;

  const host = document.createElement("div");
  host.id = "gw-widget-root";
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = "<style>" + CSS_TEXT + "</style>" + TEMPLATE;
  const $ = (sel) => root.querySelector(sel);
  const ui = {
    wrap: $(".gw-wrap"), launcher: $("#gw-launcher"), badge: $("#gw-badge"), panel: $("#gw-panel"),
    status: $("#gw-status"), list: $("#gw-messages"), notice: $("#gw-notice"), form: $(".gw-compose"),
    input: $("#gw-input"), counter: $("#gw-counter"), typing: $("#gw-typing"),
  };
  $("#gw-title").textContent = cfg.title;
  ui.wrap.classList.toggle("gw-left", cfg.left);
  if (cfg.color) ui.wrap.style.setProperty("--gw-accent", cfg.color);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function linkify(target, text) {
    let last = 0;
    let match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text))) {
      const url = match[0].replace(/[.,;:!?)\]}'"]+$/, ""); // trailing punctuation is rarely part of a URL
      target.append(text.slice(last, match.index));
      const a = el("a", "", url);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      target.append(a);
      last = match.index + url.length;
      URL_RE.lastIndex = last;
    }
    target.append(text.slice(last));
  }

  function formatTime(iso) {
    const d = iso ? new Date(iso) : new Date();
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function renderMessage(m) {
    const author = m.author || {};
    const type = ["visitor", "operator", "system"].includes(author.type) ? author.type : "system";
    const node = el("div", "gw-msg gw-" + type);
    if (m.id) node.dataset.id = m.id;
    if (m.client_id) node.dataset.clientId = m.client_id;
    node.dataset.time = m.created_at || "";
    if (type === "operator" && author.name) node.append(el("div", "gw-author", author.name));
    const quoted = m.reply_to ? ui.list.querySelector(`.gw-msg[data-id="${CSS.escape(String(m.reply_to))}"] .gw-text`) : null;
    if (quoted) node.append(el("div", "gw-quote", quoted.textContent.slice(0, 120)));
    const text = el("div", "gw-text");
    if (type === "operator") linkify(text, String(m.text || "")); else text.textContent = String(m.text || "");
    node.append(text);
    if (type !== "system") node.append(el("div", "gw-meta", formatTime(m.created_at)));
    return node;
  }

  function setDelivery(node, state) { // "pending" | "failed" | "sent"
    node.classList.toggle("gw-pending", state === "pending");
    node.classList.toggle("gw-failed", state === "failed");
    const meta = node.querySelector(".gw-meta");
    meta.textContent = state === "pending" ? "Sending…" : state === "failed" ? "Not sent · " : formatTime(node.dataset.time);
    if (state === "failed") {
      const retryBtn = el("button", "gw-retry", "Retry");
      retryBtn.type = "button";
      retryBtn.setAttribute("aria-label", "Retry sending this message");
      retryBtn.addEventListener("click", () => retry(node.dataset.clientId));
      meta.append(retryBtn);
    }
  }

  function append(node) {
    const greeting = ui.list.querySelector(".gw-greeting");
    if (greeting) greeting.remove();
    const list = ui.list;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.append(node);
    if (nearBottom || node.classList.contains("gw-visitor")) list.scrollTop = list.scrollHeight;
  }

  function showGreeting() {
    if (!cfg.greeting || ui.list.children.length) return;
    const node = el("div", "gw-greeting");
    node.append(el("div", "gw-text", cfg.greeting));
    ui.list.append(node);
  }

  function addServerMessage(m) {
    if (m.id) seen.add(m.id);
    const node = renderMessage(m);
    append(node);
    if (node.classList.contains("gw-visitor")) setDelivery(node, "sent");
  }

  function addPending(p) {
    const node = renderMessage({ client_id: p.client_id, text: p.text, author: { type: "visitor" }, created_at: p.created_at });
    append(node);
    setDelivery(node, p.failed ? "failed" : "pending");
  }

  const findByClientId = (cid) => Array.from(ui.list.children).find((n) => n.dataset.clientId === cid);

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { ui.notice.hidden = true; }, 6000);
  }

  function setUnread(n) {
    unread = n;
    store("localStorage", UNREAD_KEY, n ? String(n) : null);
    ui.badge.hidden = n === 0;
    ui.badge.textContent = n > 9 ? "9+" : String(n);
    updateLauncherLabel();
  }

  function updateLauncherLabel() {
    const label = isOpen() ? "Close chat" : unread ? `Open chat, ${unread} unread` : "Open chat";
    ui.launcher.setAttribute("aria-label", label);
  }

  function setState(state) { // "connecting" | "online" | "offline"
    ui.status.dataset.state = state;
    ui.status.textContent = state === "online" ? "" : "connecting…";
  }

  function updateComposer() {
    const input = ui.input;
    const len = input.value.length;
    ui.counter.hidden = len < MAX_LEN - 400;
    ui.counter.textContent = `${len} / ${MAX_LEN}`;
    ui.counter.classList.toggle("gw-full", len >= MAX_LEN);
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
  }

  // ---- panel ----------------------------------------------------------------------------------
  const isOpen = () => !ui.panel.hidden;

  function open() {
    if (stopped || isOpen()) return;
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    setUnread(0);
    markSeen();
    ui.list.scrollTop = ui.list.scrollHeight;
    // Focusing on touch devices would pop the keyboard over the conversation.
    if (!window.matchMedia || !matchMedia("(pointer: coarse)").matches) ui.input.focus();
    emit("open");
  }

  function close() {
    if (!isOpen()) return;
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    updateLauncherLabel();
    emit("close");
  }

  // ---- messages -------------------------------------------------------------------------------
  function newId() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID(); // secure contexts only
    const bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const savePending = () => store("sessionStorage", PENDING_KEY, pending.length ? JSON.stringify(pending) : null);
  const sendPending = (p) => sendFrame({ type: "message", text: p.text, client_id: p.client_id });

  function submit() {
    const text = ui.input.value.trim();
    if (!text) return;
    if (text.length > MAX_LEN) return showNotice(`Messages are limited to ${MAX_LEN} characters.`);
    ui.input.value = "";
    updateComposer();
    const p = { client_id: newId(), text, created_at: new Date().toISOString() };
    pending.push(p);
    savePending();
    addPending(p);
    if (ready) sendPending(p); // otherwise it goes out after the next welcome
  }

  function retry(clientId) {
    const p = pending.find((x) => x.client_id === clientId);
    const node = findByClientId(clientId);
    if (!p || !node) return;
    p.failed = false;
    savePending();
    setDelivery(node, "pending");
    if (ready) sendPending(p);
  }

  function markFailed(clientId) {
    const p = pending.find((x) => x.client_id === clientId);
    if (p) { p.failed = true; savePending(); }
    const node = findByClientId(clientId);
    if (node && node.classList.contains("gw-pending")) setDelivery(node, "failed");
  }

  function onAck(clientId, id) {
    pending = pending.filter((p) => p.client_id !== clientId);
    savePending();
    const node = findByClientId(clientId);
    if (!node) return;
    if (id) { node.dataset.id = id; seen.add(id); }
    setDelivery(node, "sent");
  }

  // ---- protocol -------------------------------------------------------------------------------
  function sendFrame(frame) {
    if (!sock || sock.readyState !== WebSocket.OPEN) return false;
    sock.send(JSON.stringify(frame));
    return true;
  }

  function helloFrame() {
    const frame = { type: "hello", page: { url: location.href, title: document.title, referrer: document.referrer } };
    const token = load("localStorage", TOKEN_KEY);
    if (token) frame.visitor_token = token;
    if (navigator.language) frame.language = navigator.language;
    return frame;
  }

  function onFrame(raw) {
    let f;
    try { f = JSON.parse(raw); } catch (e) { return; }
    if (!f || typeof f !== "object") return;
    if (f.type === "welcome") onWelcome(f);
    else if (f.type === "ack") onAck(f.client_id, f.id);
    else if (f.type === "message") onMessage(f);
    else if (f.type === "edit") onEdit(f);
    else if (f.type === "error") onError(f);
    else if (f.type === "typing") showTyping(true);
    else if (f.type === "rating_request") onRatingRequest(f);
    else if (f.type === "rated") onRated(f);
    else if (f.type === "email_request") onEmailRequest();
  }

  // ---- satisfaction survey and "leave your e-mail" (server-initiated forms) -------------------------
  function onRatingRequest(f) {
    if (!Number.isInteger(f.thread) || ui.list.querySelector(`.gw-rating[data-thread="${f.thread}"]`)) return;
    if (f.id && seen.has(f.id)) return;
    if (f.id) seen.add(f.id);
    const node = el("div", "gw-msg gw-system gw-rating");
    node.dataset.thread = String(f.thread);
    node.append(el("div", "gw-text", String(f.text || "How would you rate our help?")));
    const row = el("div", "gw-stars");
    const comment = el("input", "gw-field");
    comment.type = "text";
    comment.maxLength = 1000;
    comment.placeholder = "Add a comment (optional)";
    for (let score = 1; score <= 5; score++) {
      const b = el("button", "gw-star", String(score));
      b.type = "button";
      b.setAttribute("aria-label", `Rate ${score} out of 5`);
      b.addEventListener("click", () => {
        const frame = { type: "rating", thread: f.thread, score };
        if (comment.value.trim()) frame.comment = comment.value.trim();
        sendFrame(frame);
      });
      row.append(b);
    }
    node.append(row, comment);
    append(node);
  }

  function onRated(f) {
    const node = ui.list.querySelector(`.gw-rating[data-thread="${f.thread}"]`) || ui.list.querySelector(".gw-rating");
    if (node) node.replaceChildren(el("div", "gw-text", "Thank you for your feedback!"));
  }

  function onEmailRequest() {
    if (ui.list.querySelector(".gw-email")) return;
    const node = el("form", "gw-msg gw-system gw-email");
    node.append(el("div", "gw-text", "Leave your e-mail address and we will answer you there too:"));
    const input = el("input", "gw-field");
    input.type = "email";
    input.required = true;
    input.maxLength = 254;
    input.placeholder = "you@example.com";
    const send = el("button", "gw-star", "Send");
    send.type = "submit";
    node.append(input, send);
    node.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      identify({ email: input.value });
      node.replaceChildren(el("div", "gw-text", "Thank you, we will write to " + input.value.trim() + "."));
    });
    append(node);
  }

  // An operator's reply is on its way (the server says so just before it sends the message).
  function showTyping(on) {
    clearTimeout(typingTimer);
    ui.typing.hidden = !on;
    if (on) typingTimer = setTimeout(() => showTyping(false), OPERATOR_TYPING_MS);
  }

  function onWelcome(f) {
    clearTimeout(welcomeTimer);
    if (f.visitor_token) store("localStorage", TOKEN_KEY, f.visitor_token);
    ready = true;
    attempt = 0;
    setState("online");
    const history = Array.isArray(f.history) ? f.history.filter((m) => m && typeof m === "object") : [];
    // A message whose ack was lost is already in the history: it is no longer pending.
    const delivered = new Set(history.map((m) => m.client_id).filter(Boolean));
    pending = pending.filter((p) => !delivered.has(p.client_id));
    savePending();
    ui.list.textContent = "";
    seen.clear();
    history.forEach((m) => { if (!m.id || !seen.has(m.id)) addServerMessage(m); });
    pending.forEach(addPending);
    showGreeting();
    ui.list.scrollTop = ui.list.scrollHeight;
    pending.forEach((p) => { if (!p.failed) sendPending(p); });
    if (pendingIdentify && sendFrame(pendingIdentify)) pendingIdentify = null;
    lastPageUrl = location.href; // the hello already carried it
  }

  function onMessage(f) {
    if (f.id && seen.has(f.id)) return;
    const type = f.author && f.author.type;
    // Our own message echoed back (e.g. its ack was lost): treat as the ack.
    if (type === "visitor" && f.client_id && findByClientId(f.client_id)) return onAck(f.client_id, f.id);
    addServerMessage(f);
    if (type === "visitor") return;
    showTyping(false);
    if (f.id) unseen.push(String(f.id));
    if (!isOpen()) setUnread(unread + 1);
    else if (!document.hidden) markSeen();
    emit("message", f);
  }

  function markSeen() { // tell the operator their messages were read (shown in their chat)
    unseen = unseen.filter((id) => !sendFrame({ type: "read", id }));
  }

  function onEdit(f) { // an operator changed a message they sent
    const node = f.id ? ui.list.querySelector(`.gw-msg[data-id="${CSS.escape(String(f.id))}"]`) : null;
    if (!node || node.classList.contains("gw-visitor")) return;
    const text = node.querySelector(".gw-text");
    text.textContent = "";
    linkify(text, String(f.text || ""));
    node.classList.add("gw-edited");
  }

  function onError(f) {
    if (f.client_id) markFailed(f.client_id);
    if (f.code === "rate_limited") showNotice("You are sending messages too quickly. Please wait a moment.");
    else if (f.code === "too_large") showNotice(`That message is too long (max ${MAX_LEN} characters).`);
    else console.warn("GatewayWidget: server error", f.code, f.message);
  }

  // ---- connection -----------------------------------------------------------------------------
  function connect() {
    clearTimeout(retryTimer);
    if (stopped || sock) return;
    setState(navigator.onLine === false ? "offline" : "connecting");
    let s;
    try { s = new WebSocket(WS_URL); } catch (e) { return scheduleReconnect(); }
    sock = s;
    // A socket that opens but never gets a welcome (broken proxy) must not hang forever.
    welcomeTimer = setTimeout(() => s.close(), 15000);
    s.onopen = () => { if (s === sock) sendFrame(helloFrame()); };
    s.onmessage = (e) => { if (s === sock) onFrame(e.data); };
    s.onclose = (e) => {
      if (s !== sock) return; // a socket we already abandoned
      sock = null;
      ready = false;
      clearTimeout(welcomeTimer);
      if (e.code === 4003) stop(); else scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    setState(navigator.onLine === false ? "offline" : "connecting");
    const base = Math.min(30000, 1000 * 2 ** attempt);
    attempt = Math.min(attempt + 1, 10);
    retryTimer = setTimeout(connect, Math.min(30000, base * (0.75 + Math.random() * 0.5)));
  }

  function reconnectNow() {
    if (stopped || sock) return;
    attempt = 0;
    connect();
  }

  function stop() { // origin refused: stay out of the visitor's way for this page view
    stopped = true;
    clearTimeout(retryTimer);
    setState("offline");
    close();
    ui.launcher.hidden = true;
  }

  function notifyPage() {
    if (!ready || location.href === lastPageUrl) return;
    lastPageUrl = location.href;
    sendFrame({ type: "page", url: location.href, title: document.title });
  }

  function hookNavigation() {
    ["pushState", "replaceState"].forEach((name) => {
      const original = history[name];
      history[name] = function () {
        const result = original.apply(this, arguments);
        setTimeout(notifyPage, 100); // give the SPA a moment to update document.title
        return result;
      };
    });
    window.addEventListener("popstate", () => setTimeout(notifyPage, 100));
    window.addEventListener("hashchange", notifyPage);
  }

  // ---- public API -----------------------------------------------------------------------------
  function emit(name, payload) {
    (listeners[name] || []).slice().forEach((fn) => {
      try { fn(payload); } catch (e) { console.error("GatewayWidget listener failed", e); }
    });
  }

  function identify(info) {
    const frame = { type: "identify" };
    ["name", "email", "phone"].forEach((k) => {
      const v = info && info[k] != null ? String(info[k]).trim() : "";
      if (v) frame[k] = v;
    });
    if (Object.keys(frame).length === 1) return;
    if (!(ready && sendFrame(frame))) pendingIdentify = Object.assign(pendingIdentify || {}, frame);
  }

  function on(name, fn) {
    if (typeof fn !== "function") return () => {};
    (listeners[name] = listeners[name] || []).push(fn);
    return () => { listeners[name] = listeners[name].filter((f) => f !== fn); };
  }

  function resetVisitor() {
    store("localStorage", TOKEN_KEY, null);
    pending = [];
    savePending();
    pendingIdentify = null;
    setUnread(0);
    seen.clear();
    ui.list.textContent = "";
    showGreeting();
    const old = sock;
    sock = null; // its close handler will see it is abandoned
    ready = false;
    clearTimeout(welcomeTimer);
    if (old) old.close(1000);
    reconnectNow();
  }

  window.GatewayWidget = { open, close, identify, on, resetVisitor };

  // ---- wiring ---------------------------------------------------------------------------------
  ui.launcher.addEventListener("click", () => (isOpen() ? close() : open()));
  $("#gw-close").addEventListener("click", () => { close(); ui.launcher.focus(); });
  ui.panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { close(); ui.launcher.focus(); }
  });
  ui.form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  ui.input.addEventListener("keydown", (e) => {
    // keyCode 229: Enter that confirms an IME composition in older Safari
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); submit(); }
  });
  ui.input.addEventListener("input", () => {
    updateComposer();
    const now = Date.now();
    if (ready && ui.input.value.trim() && now - lastTypingAt >= TYPING_EVERY_MS) {
      lastTypingAt = now;
      sendFrame({ type: "typing" });
    }
  });
  window.addEventListener("online", reconnectNow);
  window.addEventListener("offline", () => { if (!ready) setState("offline"); });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) hiddenAt = Date.now();
    else if (Date.now() - hiddenAt > 5000) reconnectNow();
    if (!document.hidden && isOpen()) markSeen();
  });
  hookNavigation();

  setUnread(unread);
  pending.forEach(addPending);
  showGreeting();

  function mount() {
    document.body.appendChild(host);
    connect();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
