// The staff stream /ws/escalations/ (docs/escalations.md): a JSON WebSocket that reconnects
// with exponential backoff and full jitter, and pings to keep idle proxies from closing it.
// Plain ES2020, no dependencies; shared by queue.js and handoff.js.
(() => {
  "use strict";

  const BASE_DELAY_MS = 500;
  const MAX_DELAY_MS = 30000;
  const PING_MS = 25000;

  function connect({ path, onOpen, onFrame, onStatus }) {
    let ws = null;
    let attempt = 0;
    let pinger = null;

    function url() {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${window.location.host}${path}`;
    }

    function open() {
      onStatus("connecting");
      const socket = new WebSocket(url());
      ws = socket;
      socket.addEventListener("open", () => {
        attempt = 0;
        onStatus("connected");
        pinger = window.setInterval(() => send({ type: "ping" }), PING_MS);
        if (onOpen) onOpen();
      });
      socket.addEventListener("message", (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (_error) {
          return;
        }
        if (frame && typeof frame === "object") onFrame(frame);
      });
      socket.addEventListener("close", (event) => {
        if (ws !== socket) return;
        ws = null;
        window.clearInterval(pinger);
        // 4401: the session ended (signed out, deactivated, password or role changed). A
        // retry would be refused before the handshake, which browsers report as 1006, so it
        // would retry forever: stop, and let a reload sign in again (or reconnect, when the
        // session is still valid, say after changing one's own password).
        if (event.code === 4401 || event.code === 4403) {
          onStatus("signed_out");
          return;
        }
        // Full jitter: many agents' tabs do not all come back at the same instant.
        const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
        const delay = Math.round(Math.random() * ceiling) + 200;
        attempt += 1;
        onStatus("reconnecting", delay);
        window.setTimeout(open, delay);
      });
    }

    function send(frame) {
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify(frame));
        return true;
      }
      return false;
    }

    open();
    return {
      send,
      isOpen: () => Boolean(ws && ws.readyState === WebSocket.OPEN),
      // Drop the connection as a network failure would (tests, "reconnect" buttons).
      reconnect: () => {
        if (ws) ws.close();
      },
    };
  }

  function statusText(status, delay) {
    if (status === "connected") return "Live";
    if (status === "reconnecting") return `Connection lost; retrying in ${Math.ceil(delay / 1000)} s…`;
    if (status === "signed_out") return "Session ended: reload the page to continue.";
    return "Connecting…";
  }

  window.ActiondeskStaffSocket = { connect, statusText };
})();
