// Actiondesk's chat widget for a business's own page (docs/widget.md):
//
//   <script src="https://support.example.com/widget.js" data-site="PUBLIC_ID" async></script>
//
// Optional: data-identity="<signed identity token>" (docs/identity.md) for a signed-in customer,
// or window.ActiondeskWidget.identify(token) later. Plain ES2020, no dependencies, no build.
// It works under the page's own strict Content-Security-Policy: nothing inline, no eval, styles
// set through the CSSOM (element.style), which style-src does not restrict. The page's policy
// must allow this script (script-src) and the chat frame (frame-src) from our origin.
"use strict";

(() => {
  const script = document.currentScript;
  if (!script || window.ActiondeskWidget) return;
  const site = script.dataset.site || "";
  const base = new URL(script.src, window.location.href);
  const origin = base.origin;
  let identity = script.dataset.identity || null;
  let frame = null;
  let panel = null;
  let launcher = null;
  let frameReady = false;
  let open = false;
  let refusal = "";

  function styled(node, styles) {
    for (const [name, value] of Object.entries(styles)) node.style.setProperty(name, value);
    return node;
  }

  function frameUrl() {
    const url = new URL(`/widget/${encodeURIComponent(site)}/`, origin);
    url.searchParams.set("origin", window.location.origin);
    return url.toString();
  }

  function toFrame(message) {
    if (frame && frame.contentWindow) frame.contentWindow.postMessage(message, origin);
  }

  // On a phone the chat takes the whole screen (its own Close button closes it).
  function fitPanel() {
    const phone = window.matchMedia("(max-width: 600px)").matches;
    styled(panel, phone
      ? { inset: "0", width: "100vw", height: "100dvh", "border-radius": "0" }
      : { inset: "auto 20px 80px auto", width: "min(400px, calc(100vw - 40px))",
          height: "min(640px, calc(100vh - 110px))", "border-radius": "14px" });
    launcher.hidden = phone && open;
  }

  function setOpen(next) {
    open = next;
    panel.hidden = !open;
    fitPanel();
    launcher.setAttribute("aria-expanded", String(open));
    launcher.textContent = open ? "Close chat" : "Chat with us";
    if (open) {
      toFrame({ type: "actiondesk:opened" });
      frame.focus();
    } else {
      launcher.focus();
    }
  }

  function build() {
    launcher = styled(document.createElement("button"), {
      position: "fixed",
      right: "20px",
      bottom: "20px",
      "z-index": "2147483000",
      padding: "12px 18px",
      border: "0",
      "border-radius": "999px",
      background: "#1d4ed8",
      color: "#ffffff",
      font: "600 16px/1.2 system-ui, sans-serif",
      "box-shadow": "0 4px 14px rgba(0, 0, 0, 0.25)",
      cursor: "pointer",
    });
    launcher.type = "button";
    launcher.id = "actiondesk-launcher";
    launcher.textContent = "Chat with us";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "actiondesk-panel");

    panel = styled(document.createElement("div"), {
      position: "fixed",
      right: "20px",
      bottom: "80px",
      "z-index": "2147483000",
      width: "min(400px, calc(100vw - 40px))",
      height: "min(640px, calc(100vh - 110px))",
      "border-radius": "14px",
      overflow: "hidden",
      background: "#ffffff",
      "box-shadow": "0 8px 30px rgba(0, 0, 0, 0.3)",
    });
    panel.id = "actiondesk-panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Support chat");

    frame = styled(document.createElement("iframe"), {
      width: "100%",
      height: "100%",
      border: "0",
    });
    frame.id = "actiondesk-frame";
    frame.title = "Support chat";
    frame.src = frameUrl();
    panel.append(frame);

    launcher.addEventListener("click", () => setOpen(!open));
    window.addEventListener("resize", fitPanel);
    document.body.append(panel, launcher);
  }

  window.addEventListener("message", (event) => {
    const data = event.data || {};
    if (event.source !== (frame && frame.contentWindow)) return;
    if (data.type === "actiondesk:refused") {
      // The frame says why there is no chat (unknown or disabled site, origin not listed).
      refusal = String(data.message || "This chat isn't available.");
      launcher.dataset.refused = "true";
      console.warn(`Actiondesk widget: ${refusal}`);
      return;
    }
    if (event.origin !== origin) return;
    if (data.type === "actiondesk:ready") {
      frameReady = true;
      const colour = /^#[0-9a-fA-F]{6}$/;
      if (colour.test(data.accent || "") && colour.test(data.ink || "")) {
        launcher.style.setProperty("background", data.accent);
        launcher.style.setProperty("color", data.ink);
      }
      toFrame({ type: "actiondesk:hello", identity });
      identity = null; // a token is used once
    } else if (data.type === "actiondesk:close") {
      setOpen(false);
    }
  });

  window.ActiondeskWidget = Object.freeze({
    open: () => setOpen(true),
    close: () => setOpen(false),
    // A signed identity for the customer who just signed in on the business's page.
    identify: (token) => {
      if (frameReady) toFrame({ type: "actiondesk:identify", identity: String(token) });
      else identity = String(token);
    },
    refusal: () => refusal,
  });

  if (document.body) build();
  else document.addEventListener("DOMContentLoaded", build);
})();
