// One escalation's handoff page (templates/escalations/handoff.html). Follows the conversation
// over /ws/escalations/ with a `watch` frame (which replays what the page missed), appends new
// timeline items, and sends the agent's messages over the socket when it is up (the form posts
// normally when it is not). Text is set with textContent only.
(() => {
  "use strict";

  const root = document.getElementById("handoff");
  if (!root || !window.ActiondeskStaffSocket) return;

  const escalationId = Number(root.dataset.escalationId);
  const conversationId = root.dataset.conversationId;
  const ui = {
    status: document.getElementById("handoff-status"),
    state: document.getElementById("handoff-state"),
    log: document.getElementById("handoff-log"),
    form: document.getElementById("handoff-composer"),
    input: document.getElementById("handoff-input"),
    send: document.getElementById("handoff-send"),
    error: document.getElementById("handoff-error"),
  };
  const LABELS = {
    waiting: "Waiting",
    claimed: "Claimed",
    resolved: "Resolved",
    handed_back: "Handed back to the AI",
    cancelled: "Cancelled",
  };
  let lastSeq = Number(root.dataset.lastSeq) || 0;
  let status = root.dataset.status;
  let watching = false;
  let pendingRef = null;

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Mirrors escalations.views.timeline_entry.
  function entry(frame) {
    const kind = String(frame.type || "");
    const role = String(frame.role || "system");
    let who;
    if (kind === "message") {
      who = { user: "Customer", assistant: frame.agent || "Assistant", staff: frame.author || "Staff" }[role] || "System";
    } else {
      const words = kind.replace(/_/g, " ");
      who = words.charAt(0).toUpperCase() + words.slice(1);
    }
    const text = frame.content || frame.summary || frame.operation || "";
    return { kind, role, who, text };
  }

  function append(frame) {
    if (typeof frame.seq !== "number") return; // tokens and turn markers are not timeline items
    if (frame.seq <= lastSeq) return; // already shown (a replay overlapping live frames)
    if (frame.seq > lastSeq + 1) {
      // A gap: ask for a replay from what we have; this frame comes again in it.
      socket.send({ type: "watch", escalation_id: escalationId, after: lastSeq });
      return;
    }
    lastSeq = frame.seq;
    const item = entry(frame);
    const li = make("li", `esc-item esc-item--${item.role}`);
    li.dataset.seq = String(frame.seq);
    li.dataset.kind = item.kind;
    li.append(make("span", "esc-item__who", item.who), document.createTextNode(" "));
    li.append(make("span", "esc-item__body", item.text));
    ui.log.append(li);
    li.scrollIntoView({ block: "nearest" });
  }

  function showError(text) {
    if (!ui.error) return;
    ui.error.textContent = text || "";
    ui.error.hidden = !text;
  }

  function setStatus(summary) {
    status = summary.status;
    root.dataset.status = status;
    const claimer = summary.claimed_by ? ` · ${summary.claimed_by.name}` : "";
    ui.state.textContent = `${LABELS[status] || status}${claimer}`;
    ui.state.dataset.status = status;
    if (ui.form && status !== "claimed") {
      ui.input.disabled = true;
      ui.send.disabled = true;
    }
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "chat":
        if (frame.conversation_id === conversationId) append(frame.frame);
        break;
      case "watching":
        watching = true;
        ui.status.dataset.status = "live";
        break;
      case "sent":
        if (frame.ref === pendingRef) {
          pendingRef = null;
          ui.input.value = "";
          ui.send.disabled = false;
          showError("");
        }
        break;
      case "error":
        pendingRef = null;
        if (ui.send) ui.send.disabled = status !== "claimed";
        showError(frame.message);
        break;
      default:
        if (frame.type && frame.type.startsWith("escalation_") && frame.escalation?.id === escalationId) {
          setStatus(frame.escalation);
        }
    }
  }

  const socket = window.ActiondeskStaffSocket.connect({
    path: root.dataset.wsPath,
    onOpen: () => {
      watching = false;
      socket.send({ type: "watch", escalation_id: escalationId, after: lastSeq });
    },
    onFrame,
    onStatus: (next, delay) => {
      if (next !== "connected") watching = false;
      ui.status.dataset.status = next;
      ui.status.textContent = window.ActiondeskStaffSocket.statusText(next, delay);
    },
  });

  if (ui.form) {
    ui.form.addEventListener("submit", (event) => {
      const content = ui.input.value;
      if (!content.trim()) {
        event.preventDefault();
        showError("The message is empty.");
        return;
      }
      if (!watching || pendingRef) return; // no live socket: the form posts as usual
      event.preventDefault();
      pendingRef = `r${Date.now()}${Math.random().toString(16).slice(2, 8)}`;
      ui.send.disabled = true;
      if (!socket.send({ type: "message", escalation_id: escalationId, content, ref: pendingRef })) {
        pendingRef = null;
        ui.send.disabled = false;
        ui.form.submit();
      }
    });
    ui.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        ui.form.requestSubmit();
      }
    });
  }

  window.actiondeskHandoff = {
    snapshot: () => ({ lastSeq, status, watching }),
    reconnect: () => socket.reconnect(),
  };
})();
