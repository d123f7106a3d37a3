// The live escalation queue (templates/escalations/queue.html, docs/escalations.md). Rows come
// from the `queue` snapshot on every (re)connect and from escalation_* frames in between. All
// text is set with textContent; nothing from the server is parsed as HTML.
(() => {
  "use strict";

  const root = document.getElementById("queue");
  if (!root || !window.ActiondeskStaffSocket) return;

  const ui = {
    status: document.getElementById("queue-status"),
    rows: document.getElementById("queue-rows"),
    empty: document.getElementById("queue-empty"),
    count: document.getElementById("queue-count"),
    interrupts: document.getElementById("interrupt-rows"),
    interruptEmpty: document.getElementById("interrupt-empty"),
    interruptCount: document.getElementById("interrupt-count"),
  };
  const csrfInput = document.querySelector("#queue-csrf input[name=csrfmiddlewaretoken]");
  const csrf = csrfInput ? csrfInput.value : "";
  const canAct = root.dataset.canAct === "1";
  const baseTitle = document.title;
  const decideUrl = root.dataset.decideUrl || "";
  const OPEN = new Set(["waiting", "claimed"]);
  const RANK = { high: 0, normal: 1, low: 2 };
  const RESYNC_MS = 60000;

  const rows = new Map(); // escalation id -> summary
  const pendingInterrupts = new Map(); // interrupt id -> summary (staff approvals waiting)
  const unseen = new Set(); // waiting escalations that arrived while nobody looked
  let clockOffset = 0; // server time minus this browser's time, in ms
  let status = "connecting";

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function postForm(action, label, className, extra) {
    const form = make("form");
    form.method = "post";
    form.action = action;
    const token = make("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrf;
    form.append(token);
    for (const [name, value] of Object.entries(extra || {})) {
      const field = make("input");
      field.type = "hidden";
      field.name = name;
      field.value = value;
      form.append(field);
    }
    const button = make("button", `button ${className}`, label);
    button.type = "submit";
    form.append(button);
    return form;
  }

  function renderRow(item) {
    const tr = make("tr", `esc-row esc-row--${RANK[item.priority] === undefined ? "normal" : item.priority}`);
    tr.dataset.escalationId = String(item.id);
    tr.dataset.status = item.status;
    tr.dataset.createdAt = item.created_at;
    const priority = make("span", `esc-priority esc-priority--${item.priority}`, item.priority);
    priority.title = item.priority_reason || "";
    const priorityCell = make("td");
    priorityCell.append(priority);
    tr.append(priorityCell);
    const what = make("td");
    const link = make("a", "", item.title || "(untitled)");
    link.href = item.url;
    what.append(link, make("div", "esc-preview", item.preview));
    tr.append(what);
    const why = make("td");
    why.append(make("span", "esc-trigger", item.trigger), make("div", "esc-reason", item.reason));
    tr.append(why);
    const wait = make("td", "esc-wait", "–");
    wait.dataset.since = item.created_at;
    tr.append(wait);
    tr.append(make("td", "esc-state", item.claimed_by ? `Claimed by ${item.claimed_by.name}` : "Waiting"));
    const actions = make("td", "esc-actions");
    if (item.status === "waiting" && canAct) {
      actions.append(postForm(`${item.url}claim/`, "Claim", "esc-claim"));
    } else {
      const open = make("a", "button", "Open");
      open.href = item.url;
      actions.append(open);
    }
    tr.append(actions);
    if (unseen.has(item.id)) tr.classList.add("esc-row--new");
    return tr;
  }

  function order(a, b) {
    if (a.status !== b.status) return a.status === "waiting" ? -1 : 1;
    if (a.status === "waiting") {
      const rank = (RANK[a.priority] ?? 1) - (RANK[b.priority] ?? 1);
      return rank || Date.parse(a.created_at) - Date.parse(b.created_at);
    }
    return Date.parse(a.claimed_at || a.created_at) - Date.parse(b.claimed_at || b.created_at);
  }

  function draw() {
    const items = [...rows.values()].sort(order);
    ui.rows.replaceChildren(...items.map(renderRow));
    ui.empty.hidden = items.length > 0;
    ui.count.textContent = String(items.length);
    tick();
    updateTitle();
  }

  function upsert(item) {
    if (OPEN.has(item.status)) rows.set(item.id, item);
    else rows.delete(item.id);
    if (item.status !== "waiting") unseen.delete(item.id);
  }

  function updateTitle() {
    document.title = unseen.size ? `(${unseen.size}) ${baseTitle}` : baseTitle;
  }

  function seen() {
    if (!unseen.size) return;
    unseen.clear();
    for (const row of ui.rows.querySelectorAll(".esc-row--new")) row.classList.remove("esc-row--new");
    updateTitle();
  }

  function duration(ms) {
    const seconds = Math.max(0, Math.floor(ms / 1000));
    if (seconds < 60) return `${seconds} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function tick() {
    const now = Date.now() + clockOffset;
    for (const cell of ui.rows.querySelectorAll(".esc-wait")) {
      cell.textContent = duration(now - Date.parse(cell.dataset.since));
    }
  }

  function drawInterrupts() {
    if (!ui.interrupts) return;
    const items = [...pendingInterrupts.values()].sort(
      (a, b) => Date.parse(a.created_at) - Date.parse(b.created_at),
    );
    ui.interrupts.replaceChildren(
      ...items.map((item) => {
        const tr = make("tr");
        tr.dataset.interruptId = item.id;
        const what = make("td", "", item.summary);
        what.append(make("div", "esc-preview", item.edited ? `${item.operation} (edited)` : item.operation));
        const expires = make("time", "", new Date(item.expires_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }));
        expires.dateTime = item.expires_at;
        const cell = make("td");
        cell.append(expires);
        const actions = make("td", "esc-actions");
        const action = decideUrl.replace("00000000-0000-0000-0000-000000000000", item.id);
        const form = postForm(action, "Approve", "esc-approve", { next: window.location.pathname });
        const approve = form.querySelector("button");
        approve.name = "decision";
        approve.value = "approve";
        const reject = make("button", "button esc-reject", "Reject");
        reject.type = "submit";
        reject.name = "decision";
        reject.value = "reject";
        form.append(reject);
        actions.append(form);
        tr.append(what, make("td", "", item.policy_reason), cell, actions);
        return tr;
      }),
    );
    ui.interruptEmpty.hidden = items.length > 0;
    ui.interruptCount.textContent = String(items.length);
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "queue": {
        clockOffset = Date.parse(frame.server_time) - Date.now() || 0;
        rows.clear();
        for (const item of frame.escalations) upsert(item);
        for (const id of [...unseen]) if (!rows.has(id)) unseen.delete(id);
        pendingInterrupts.clear();
        for (const item of frame.interrupts || []) pendingInterrupts.set(item.id, item);
        drawInterrupts();
        draw();
        break;
      }
      case "interrupt_pending":
        pendingInterrupts.set(frame.interrupt.id, frame.interrupt);
        drawInterrupts();
        break;
      case "interrupt_settled":
        pendingInterrupts.delete(frame.interrupt_id);
        drawInterrupts();
        break;
      case "escalation_created":
        if (frame.escalation.status === "waiting") unseen.add(frame.escalation.id);
        upsert(frame.escalation);
        draw();
        break;
      case "escalation_claimed":
      case "escalation_resolved":
      case "escalation_handed_back":
      case "escalation_cancelled":
      case "escalation_updated":
        upsert(frame.escalation);
        draw();
        break;
      default:
        break;
    }
  }

  const socket = window.ActiondeskStaffSocket.connect({
    path: root.dataset.wsPath,
    onFrame,
    onStatus: (next, delay) => {
      status = next;
      ui.status.dataset.status = next;
      ui.status.textContent = window.ActiondeskStaffSocket.statusText(next, delay);
    },
  });

  // Anything the agent does on the page, or coming back to the tab, means they have seen the
  // new rows.
  for (const event of ["pointerdown", "keydown"]) window.addEventListener(event, seen);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") seen();
  });
  window.setInterval(tick, 1000);
  // A cheap resync: a frame lost while the socket was down is healed.
  window.setInterval(() => socket.send({ type: "snapshot" }), RESYNC_MS);
  tick();

  window.actiondeskQueue = {
    snapshot: () => ({ rows: rows.size, interrupts: pendingInterrupts.size, unseen: unseen.size, status }),
    reconnect: () => socket.reconnect(),
  };
})();
