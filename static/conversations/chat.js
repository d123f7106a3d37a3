// The customer's chat page: the client side of docs/websocket-protocol.md (see docs/chat-page.md).
//
// Plain ES2020, no dependencies, loaded with `defer`. Text from the model, tools and staff is
// only ever written with textContent / createTextNode, never parsed as HTML.
"use strict";

(() => {
  const root = document.getElementById("chat");
  if (!root) return;

  const MAX_CHARS = Number(root.dataset.maxChars) || 10000;
  const PING_MS = 25000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const ROLES = new Set(["user", "assistant", "staff", "system"]);
  const DECISION_ERRORS = new Set([
    "arguments_mismatch",
    "invalid_frame",
    "not_found",
    "permission_denied",
  ]);
  const QUIET_STATES = new Set(["escalated", "human_active", "closed"]);
  const FINAL_CLOSES = {
    4403: "This conversation isn't available here. Start a new conversation to keep chatting.",
    4429: "You were disconnected for sending too many messages. Reload the page to continue.",
  };

  const ui = {
    log: document.getElementById("chat-log"),
    banner: document.getElementById("chat-banner"),
    notices: document.getElementById("chat-notices"),
    status: document.getElementById("chat-status"),
    typing: document.getElementById("chat-typing"),
    form: document.getElementById("chat-composer"),
    input: document.getElementById("chat-input"),
    error: document.getElementById("chat-error"),
    escalate: document.getElementById("chat-escalate"),
    send: document.getElementById("chat-send"),
  };

  let state = root.dataset.state || "ai_active";
  let ws = null;
  let connection = 0; // increments per socket, so the outbox knows what this socket has sent
  let connected = false;
  let finalClose = false;
  let resuming = false;
  let stalledResumes = 0;
  let attempt = 0;
  let failedHandshakes = 0;
  let retryTimer = 0;
  let pingTimer = 0;
  let limitedUntil = 0; // a limit's retry_after, as a time: a 4429 close before it is retried
  let limitedText = "";
  let lastSeq = 0;
  const pending = new Map(); // seq -> durable frame that arrived ahead of a gap
  const outbox = new Map(); // client_id -> {content, node, sentOn}
  const streams = new Map(); // turn_id -> {node, text}
  const activeTurns = new Set();

  // --- DOM helpers: text only --------------------------------------------------------------

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function nearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 120;
  }

  function scrollDown(force) {
    if (force || nearBottom()) ui.log.scrollTop = ui.log.scrollHeight;
  }

  // Durable items stay in seq order; optimistic and streaming bubbles float below them.
  function insertDurable(node) {
    const stick = nearBottom();
    ui.log.insertBefore(node, ui.log.querySelector(":scope > .is-floating"));
    scrollDown(stick);
  }

  function appendFloating(node) {
    const stick = nearBottom();
    node.classList.add("is-floating");
    ui.log.append(node);
    scrollDown(stick);
  }

  function bubble(role, who, content) {
    const safeRole = ROLES.has(role) ? role : "system";
    const node = make("li", `item msg msg--${safeRole}`);
    if (who) node.append(make("span", "msg__who", who));
    node.append(make("p", "msg__body", content || ""));
    return node;
  }

  function activity(kind, modifier, text) {
    const node = make("li", `item activity${modifier ? ` activity--${modifier}` : ""}`, text);
    node.dataset.kind = kind;
    return node;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    return date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  function formatValue(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  // --- Notices, banner, status ---------------------------------------------------------------

  function notice(text, level = "error") {
    const node = make("div", `notice notice--${level}`);
    node.setAttribute("role", level === "error" ? "alert" : "status");
    node.append(make("span", "notice__text", text));
    const close = make("button", "notice__close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => node.remove());
    node.append(close);
    ui.notices.append(node);
    return node;
  }

  // Calls render(secondsLeft) now and every second down to render(0), then done().
  function countdown(seconds, render, done = () => {}) {
    let left = seconds;
    render(left);
    const timer = window.setInterval(() => {
      left -= 1;
      render(Math.max(0, left));
      if (left <= 0) {
        window.clearInterval(timer);
        done();
      }
    }, 1000);
    return timer;
  }

  function showBanner(text, final = false) {
    ui.banner.textContent = text;
    ui.banner.classList.toggle("banner--final", final);
    ui.banner.hidden = false;
  }

  function hideBanner() {
    ui.banner.hidden = true;
    ui.banner.textContent = "";
  }

  function setStatus(status, text) {
    ui.status.dataset.status = status;
    ui.status.textContent = text;
  }

  function setState(next) {
    if (typeof next === "string" && next) state = next;
    root.dataset.state = state;
    const closed = state === "closed";
    ui.input.disabled = closed || finalClose;
    ui.send.disabled = closed || finalClose;
    ui.escalate.disabled = QUIET_STATES.has(state) || finalClose;
    if (state === "escalated") ui.escalate.textContent = "A human has been asked";
    else if (state === "human_active") ui.escalate.textContent = "You're talking to a human";
    else ui.escalate.textContent = "Talk to a human";
    if (closed) ui.input.placeholder = "This conversation is closed. Start a new one above.";
  }

  function updateTyping() {
    ui.typing.hidden = activeTurns.size === 0 || streams.size > 0;
  }

  // --- Interrupt cards -----------------------------------------------------------------------

  function findCard(interruptId) {
    for (const card of ui.log.querySelectorAll(".card")) {
      if (card.dataset.interruptId === interruptId) return card;
    }
    return null;
  }

  function isPlainObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // Nested objects (a request body) are listed field by field: "body › code".
  function argumentRows(args, prefix = "") {
    const rows = [];
    for (const [key, value] of Object.entries(args)) {
      const label = prefix ? `${prefix} › ${key}` : key;
      if (isPlainObject(value) && Object.keys(value).length > 0) {
        rows.push(...argumentRows(value, label));
      } else {
        rows.push([label, formatValue(value)]);
      }
    }
    return rows;
  }

  function fillArguments(card, args) {
    const list = card.querySelector(".card__args");
    if (!list || !isPlainObject(args)) return;
    list.replaceChildren();
    for (const [label, value] of argumentRows(args)) {
      list.append(make("dt", "", label), make("dd", "", value));
    }
  }

  function settleCard(card, status, text) {
    card.dataset.status = status;
    for (const button of card.querySelectorAll("button[data-decision]")) button.disabled = true;
    const actions = card.querySelector(".card__actions");
    if (actions) actions.hidden = true;
    for (const part of card.querySelectorAll(".card__note, .card__expiry")) part.hidden = true;
    card.querySelector(".card__status").textContent = text;
  }

  function resolvedText(decision, by, edited) {
    const verb = decision === "approved" ? "Approved" : "Rejected";
    const changed = edited && decision === "approved" ? " with changes" : "";
    return `${verb} ${by === "customer" ? "by you" : "by staff"}${changed}`;
  }

  // Staff may correct the arguments before approving (45 → 40): the card then shows what was
  // actually approved and executed, not what was first proposed.
  function showDecidedArguments(card, summary, args, hash) {
    if (summary) card.querySelector(".card__title").textContent = summary;
    if (isPlainObject(args)) fillArguments(card, args);
    if (hash) card.dataset.argumentsHash = String(hash);
    card.dataset.edited = "1";
  }

  function interruptCard(frame) {
    const card = make("li", "item card");
    card.dataset.kind = "interrupt";
    card.dataset.interruptId = String(frame.interrupt_id || "");
    card.dataset.argumentsHash = String(frame.arguments_hash || "");
    card.dataset.approver = frame.approver === "user" ? "user" : "staff";
    card.dataset.status = "pending";
    card.append(make("p", "card__title", frame.summary || frame.operation || "An action"));
    card.append(make("dl", "card__args"));
    fillArguments(card, frame.arguments);
    const expiry = make("p", "card__expiry", "Expires ");
    const time = make("time", "", formatTime(frame.expires_at));
    time.dateTime = String(frame.expires_at || "");
    expiry.append(time);
    card.append(expiry);
    if (frame.approver === "user") {
      const actions = make("div", "card__actions");
      const approve = make("button", "button", "Approve");
      approve.type = "button";
      approve.dataset.decision = "approve";
      const reject = make("button", "button button--danger", "Reject");
      reject.type = "button";
      reject.dataset.decision = "reject";
      actions.append(approve, reject);
      card.append(actions);
    } else {
      card.append(make("p", "card__note", "Waiting for a member of staff to approve this."));
    }
    card.append(make("p", "card__status"));
    return card;
  }

  function decide(card, decision) {
    if (card.dataset.status !== "pending") return;
    const sent = sendFrame({
      type: "approval",
      interrupt_id: card.dataset.interruptId,
      decision,
      arguments_hash: card.dataset.argumentsHash,
    });
    if (!sent) {
      notice("You're offline; try again once the chat has reconnected.");
      return;
    }
    for (const button of card.querySelectorAll("button[data-decision]")) button.disabled = true;
    card.dataset.status = "deciding";
    card.querySelector(".card__status").textContent =
      decision === "approve" ? "Approving…" : "Rejecting…";
  }

  // --- Durable frames ------------------------------------------------------------------------

  function acknowledge(entry, frame) {
    outbox.delete(frame.client_id);
    const node = entry.node;
    node.classList.remove("is-floating", "is-sending", "is-failed");
    node.dataset.kind = "message";
    node.dataset.seq = String(frame.seq);
    const status = node.querySelector(".msg__status");
    if (status) status.remove();
    insertDurable(node);
  }

  function showIdentity(identity) {
    // Verified inside the chat (or by another tab): the header says who the customer is now.
    const section = document.getElementById("chat-identity");
    if (!section || !identity.verified) return;
    section.dataset.verified = "true";
    section.textContent = "";
    const who = document.createElement("p");
    who.className = "identity__who";
    who.textContent = "Signed in as " + (identity.name || identity.email) + " (" + identity.email + ")";
    section.appendChild(who);
  }

  function renderDurable(frame) {
    switch (frame.type) {
      case "message": {
        const entry = frame.client_id ? outbox.get(frame.client_id) : undefined;
        if (entry && frame.role === "user") {
          acknowledge(entry, frame);
          return null;
        }
        const who = {
          user: "You",
          assistant: frame.agent || "Assistant",
          staff: frame.author || "Support",
        }[frame.role];
        if (frame.identity) showIdentity(frame.identity);
        const node = bubble(frame.role, who, frame.content);
        if (frame.client_id) node.dataset.clientId = String(frame.client_id);
        if (frame.turn_id != null) {
          node.dataset.turnId = String(frame.turn_id);
          // The finished text replaces what was streamed for this turn.
          const stream = streams.get(String(frame.turn_id));
          if (stream) {
            stream.node.remove();
            streams.delete(String(frame.turn_id));
            updateTyping();
          }
        }
        return node;
      }
      case "clarification": {
        const node = bubble("assistant", "Assistant", frame.content);
        node.classList.add("msg--question");
        return node;
      }
      case "tool_call":
        return activity("tool_call", "call", frame.summary || frame.operation || "Working…");
      case "tool_result":
        return activity("tool_result", frame.ok ? "ok" : "failed", frame.summary || "");
      case "interrupt":
        return interruptCard(frame);
      case "interrupt_resolved": {
        const card = findCard(String(frame.interrupt_id));
        const text = resolvedText(frame.decision, frame.by, frame.edited);
        if (card) {
          if (frame.edited) showDecidedArguments(card, frame.summary, frame.arguments, frame.arguments_hash);
          settleCard(card, frame.decision === "approved" ? "approved" : "rejected", text);
        }
        const modifier = frame.decision === "approved" ? "approved" : "rejected";
        const shown = frame.edited && frame.summary ? `${text}: ${frame.summary}` : text;
        return activity("interrupt_resolved", modifier, shown);
      }
      case "interrupt_expired":
        return expired(frame);
      case "escalated":
        setState("escalated");
        return make("li", "item notice-item", frame.content || "A human has been asked to help.");
      case "staff_joined": {
        setState("human_active");
        // The content already names the person ("Ana from support joined ...").
        if (frame.content) return make("li", "item notice-item notice-item--staff", frame.content);
        const node = make("li", "item notice-item notice-item--staff");
        node.append(make("strong", "notice-item__name", frame.name || "Support"));
        node.append(document.createTextNode(" joined the conversation."));
        return node;
      }
      default:
        return activity(String(frame.type), "", typeof frame.content === "string" ? frame.content : "");
    }
  }

  function expired(frame) {
    const card = findCard(String(frame.interrupt_id));
    if (card) settleCard(card, "expired", "Expired");
    let text = frame.content || "This request expired before it was approved.";
    if (frame.summary) text += ` (${frame.summary})`;
    return activity("interrupt_expired", "expired", text);
  }

  function applyDurable(frame) {
    lastSeq = frame.seq;
    const node = renderDurable(frame);
    if (!node) return;
    if (!node.dataset.kind) node.dataset.kind = String(frame.type);
    node.dataset.seq = String(frame.seq);
    if (frame.interrupt_id && !node.dataset.interruptId) {
      node.dataset.interruptId = String(frame.interrupt_id);
    }
    insertDurable(node);
  }

  // Apply durable frames strictly in seq order: drop what is already shown, hold what arrives
  // ahead of a gap and ask the server to replay the gap.
  function receiveDurable(frame) {
    if (frame.seq <= lastSeq) {
      // A resend's echo can arrive after the replay already showed the message.
      const entry = frame.client_id ? outbox.get(frame.client_id) : undefined;
      if (entry) {
        entry.node.remove();
        outbox.delete(frame.client_id);
      }
      return;
    }
    pending.set(frame.seq, frame);
    drain();
  }

  function drain() {
    while (pending.has(lastSeq + 1)) {
      const frame = pending.get(lastSeq + 1);
      pending.delete(frame.seq);
      applyDurable(frame);
    }
    if (pending.size > 0 && !resuming) resume();
  }

  function resume() {
    if (sendFrame({ type: "resume", after: lastSeq })) resuming = true;
  }

  function resumed() {
    resuming = false;
    if (pending.size > 0) {
      const before = lastSeq;
      drain();
      if (lastSeq === before && (stalledResumes += 1) > 2) {
        // The server replayed everything it has and the gap is still there: skip over it
        // rather than hold later frames back for ever.
        lastSeq = Math.min(...pending.keys()) - 1;
        stalledResumes = 0;
        drain();
      }
    } else {
      stalledResumes = 0;
    }
    flushOutbox();
  }

  // --- Live frames ---------------------------------------------------------------------------

  function onToken(frame) {
    const key = String(frame.turn_id);
    let stream = streams.get(key);
    if (!stream) {
      const node = bubble("assistant", "Assistant", "");
      node.classList.add("is-streaming");
      node.dataset.turnId = key;
      // Screen readers hear the finished message, not every token.
      node.setAttribute("aria-hidden", "true");
      const text = document.createTextNode("");
      node.querySelector(".msg__body").append(text);
      stream = { node, text };
      streams.set(key, stream);
      appendFloating(node);
      updateTyping();
    }
    const stick = nearBottom();
    stream.text.appendData(String(frame.delta || ""));
    scrollDown(stick);
  }

  function onError(frame) {
    let text = frame.message || "Something went wrong.";
    if (DECISION_ERRORS.has(frame.code)) {
      // The decision did not go through: let the customer try again.
      for (const card of ui.log.querySelectorAll('.card[data-status="deciding"]')) {
        card.dataset.status = "pending";
        for (const button of card.querySelectorAll("button[data-decision]")) button.disabled = false;
        card.querySelector(".card__status").textContent = "";
      }
    }
    if (frame.code === "rate_limited") {
      const wait = Math.max(1, Math.ceil(Number(frame.retry_after) || 1));
      limitedUntil = Date.now() + wait * 1000;
      limitedText = frame.message || "You're sending messages too quickly.";
      for (const entry of outbox.values()) entry.sentOn = 0;
      window.setTimeout(flushOutbox, wait * 1000);
      const node = notice("");
      node.classList.add("notice--countdown");
      countdown(wait, (left) => {
        node.querySelector(".notice__text").textContent = left
          ? `You're sending messages too quickly. Try again in ${left} s.`
          : "You can send messages again.";
      });
      return;
    } else if (frame.code === "invalid_transition") {
      for (const [clientId, entry] of outbox) {
        entry.node.classList.replace("is-sending", "is-failed");
        const status = entry.node.querySelector(".msg__status");
        if (status) status.textContent = "Not sent";
        outbox.delete(clientId);
      }
    }
    notice(text);
  }

  function onReady(frame) {
    connected = true;
    attempt = 0;
    failedHandshakes = 0;
    hideBanner();
    setStatus("connected", "Connected");
    setState(frame.state);
    // Tokens are not replayed: drop half-streamed text, the finished message comes by resume.
    for (const stream of streams.values()) stream.node.remove();
    streams.clear();
    activeTurns.clear();
    updateTyping();
    resume();
    window.clearInterval(pingTimer);
    pingTimer = window.setInterval(() => sendFrame({ type: "ping" }), PING_MS);
  }

  function onFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (Number.isInteger(frame.seq)) {
      receiveDurable(frame);
      return;
    }
    switch (frame.type) {
      case "ready":
        onReady(frame);
        break;
      case "resumed":
        resumed();
        break;
      case "token":
        onToken(frame);
        break;
      case "turn_start":
        activeTurns.add(String(frame.turn_id));
        updateTyping();
        break;
      case "turn_end":
        activeTurns.delete(String(frame.turn_id));
        updateTyping();
        break;
      case "interrupt_expired": {
        // Not stored: the answer to a late approval.
        const node = expired(frame);
        node.dataset.kind = "interrupt_expired";
        insertDurable(node);
        break;
      }
      case "identified":
        showIdentity(frame);
        break;
      case "error":
        onError(frame);
        break;
      default:
        break; // pong, and anything newer than this page
    }
  }

  // --- Socket --------------------------------------------------------------------------------

  function sendFrame(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !connected) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function flushOutbox() {
    for (const [clientId, entry] of outbox) {
      if (entry.sentOn === connection) continue;
      if (sendFrame({ type: "message", client_id: clientId, content: entry.content })) {
        entry.sentOn = connection;
      }
    }
  }

  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${root.dataset.wsPath}`;
  }

  function connect() {
    window.clearTimeout(retryTimer);
    connection += 1;
    const socket = new WebSocket(socketUrl());
    let opened = false;
    ws = socket;
    socket.addEventListener("open", () => {
      opened = true;
    });
    socket.addEventListener("message", (event) => {
      if (ws === socket) onFrame(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (ws === socket) onClose(event.code, opened);
    });
  }

  function onClose(code, opened) {
    connected = false;
    resuming = false;
    window.clearInterval(pingTimer);
    if (code === 4429 && limitedUntil > Date.now()) {
      // Limited at the handshake (too many chats or attempts): wait it out, visibly, then retry.
      const wait = Math.ceil((limitedUntil - Date.now()) / 1000);
      const reason = limitedText.replace(/;?\s*try again in \d+ s\.?$/i, ".");
      setStatus("reconnecting", "Waiting…");
      countdown(
        wait,
        (left) => showBanner(`${reason} Reconnecting in ${left} s.`),
        () => connect(),
      );
      return;
    }
    if (FINAL_CLOSES[code]) {
      stop(FINAL_CLOSES[code]);
      return;
    }
    // A refused handshake reaches the browser as a plain failure (1006), so ask the page itself
    // whether this conversation is still ours before retrying for ever.
    failedHandshakes = opened ? 0 : failedHandshakes + 1;
    if (failedHandshakes >= 2) probe();
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    attempt += 1;
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    showBanner("Reconnecting…");
    setStatus("reconnecting", "Reconnecting…");
    retryTimer = window.setTimeout(connect, delay);
  }

  function stop(message) {
    finalClose = true;
    window.clearTimeout(retryTimer);
    showBanner(message, true);
    setStatus("closed", "Disconnected");
    setState(state);
  }

  function probe() {
    fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then((response) => {
        if (response.status === 403 || response.status === 404) stop(FINAL_CLOSES[4403]);
      })
      .catch(() => {}); // offline: keep retrying
  }

  // --- Composer ------------------------------------------------------------------------------

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; getRandomValues does not.
    const bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function inputError(text) {
    ui.error.textContent = text;
    ui.error.hidden = !text;
  }

  function submit() {
    const content = ui.input.value.trim();
    if (!content) {
      inputError("Type a message first.");
      return;
    }
    // The server counts characters as Python does (code points), not UTF-16 units.
    const length = [...content].length;
    if (length > MAX_CHARS) {
      inputError(
        `Messages can be at most ${MAX_CHARS.toLocaleString()} characters; ` +
          `this one has ${length.toLocaleString()}.`,
      );
      return;
    }
    inputError("");
    const clientId = newClientId();
    const node = bubble("user", "You", content);
    node.classList.add("is-sending");
    node.dataset.clientId = clientId;
    node.append(make("span", "msg__status", "Sending…"));
    appendFloating(node);
    scrollDown(true);
    const entry = { content, node, sentOn: 0 };
    outbox.set(clientId, entry);
    if (sendFrame({ type: "message", client_id: clientId, content })) entry.sentOn = connection;
    ui.input.value = "";
    ui.input.focus();
  }

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });

  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });

  ui.input.addEventListener("input", () => {
    if (!ui.error.hidden) inputError("");
  });

  ui.escalate.addEventListener("click", () => {
    if (!sendFrame({ type: "escalate" })) {
      notice("You're offline; try again once the chat has reconnected.");
      return;
    }
    ui.escalate.disabled = true;
    ui.escalate.textContent = "Asking for a human…";
  });

  ui.log.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-decision]");
    const card = button && button.closest(".card");
    if (card) decide(card, button.dataset.decision);
  });

  // --- Start: adopt the server-rendered history, then connect --------------------------------

  for (const item of ui.log.querySelectorAll(":scope > [data-seq]")) {
    lastSeq = Math.max(lastSeq, Number(item.dataset.seq) || 0);
  }
  for (const card of ui.log.querySelectorAll(".card")) {
    const data = document.getElementById(card.dataset.interruptId);
    if (data) {
      try {
        fillArguments(card, JSON.parse(data.textContent));
      } catch {
        // leave the list empty; the summary still says what the call does
      }
    }
  }
  for (const time of ui.log.querySelectorAll("time[datetime]")) {
    time.textContent = formatTime(time.dateTime);
  }
  for (const item of ui.log.querySelectorAll("[data-kind=interrupt_resolved]")) {
    const card = findCard(item.dataset.interruptId);
    if (card) {
      const status = item.dataset.decision === "approved" ? "approved" : "rejected";
      const edited = item.dataset.edited === "1";
      if (edited) {
        let args = null;
        const data = document.getElementById(`decided-${item.dataset.interruptId}`);
        try {
          args = data ? JSON.parse(data.textContent) : null;
        } catch {
          // keep the proposed arguments; the summary below still names the decided call
        }
        showDecidedArguments(card, item.dataset.summary, args, "");
      }
      settleCard(card, status, resolvedText(item.dataset.decision, item.dataset.by, edited));
    }
  }
  for (const item of ui.log.querySelectorAll("[data-kind=interrupt_expired]")) {
    const card = findCard(item.dataset.interruptId);
    if (card) settleCard(card, "expired", "Expired");
  }
  setState(state);
  scrollDown(true);

  window.addEventListener("online", () => {
    // Come back at once instead of waiting out the backoff (unless a socket is on its way).
    if (!finalClose && (!ws || ws.readyState === WebSocket.CLOSED)) {
      attempt = 0;
      connect();
    }
  });

  // For tests and support: read the client's state, or drop the socket to exercise reconnect.
  window.actiondeskChat = Object.freeze({
    snapshot: () => ({ connected, state, lastSeq, outbox: outbox.size, pending: pending.size }),
    reconnect: () => {
      if (ws) ws.close();
    },
  });

  connect();
})();
