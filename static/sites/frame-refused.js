// The widget frame's refusal page tells the embedding page's widget.js why there is no chat.
// The sentence is all it holds, so any parent may read it.
"use strict";

(() => {
  const root = document.getElementById("widget-refused");
  if (root && window.parent !== window) {
    window.parent.postMessage({ type: "actiondesk:refused", message: root.dataset.message }, "*");
  }
})();
