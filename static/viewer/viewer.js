/*
 * The viewer page: shows a session's document and follows its versions live.
 *
 * The client token lives in the URL fragment and in this script's memory only: it is sent
 * in the WebSocket's first message and never in a URL, a cookie or storage.
 */
(function () {
  "use strict";

  const body = document.body;
  const sessionId = body.dataset.sessionId;
  const container = document.getElementById("document");
  const notice = document.getElementById("notice");
  const statusBox = document.getElementById("status");
  const statusText = document.getElementById("status-text");
  const retryButton = document.getElementById("retry");
  const viewersBox = document.getElementById("viewers");
  const updatedBox = document.getElementById("updated");

  const token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
  let shownVersion = null;
  let socket = null;

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function showStatus(state, text) {
    statusBox.dataset.state = state;
    statusText.textContent = text;
    retryButton.hidden = state !== "reconnecting";
  }

  function onState(state, detail) {
    body.dataset.state = state;
    if (state === "connecting") {
      showStatus(state, "Connecting…");
    } else if (state === "live") {
      showStatus(state, "Live");
    } else if (state === "reconnecting") {
      showStatus(state, detail ? `Connection lost: reconnecting in ${detail} s` : "Reconnecting…");
      viewersBox.hidden = true;
    } else if (state === "ended") {
      showStatus(state, "Session ended");
      showNotice(shownVersion === null ? "This session has ended." : "This session has ended. The last version is shown below.");
      viewersBox.hidden = true;
    } else if (state === "refused") {
      showStatus(state, `Access refused: ${detail.words}`);
      showNotice(`This document cannot be shown: ${detail.words}.`);
      // A revoked token loses what it was shown too.
      container.replaceChildren();
      viewersBox.hidden = true;
      updatedBox.hidden = true;
    }
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function showViewers(count) {
    if (typeof count !== "number") {
      return;
    }
    viewersBox.textContent = count === 1 ? "1 viewer" : `${count} viewers`;
    viewersBox.hidden = false;
  }

  function onMessage(message) {
    const action = typeof message.Action === "string" ? message.Action.toLowerCase() : "";
    if (action === "init" && message.Success) {
      showViewers(message.Viewers);
    } else if (action === "get-html" && message.Success) {
      show(message.Content || "", message.Version);
    } else if (action === "presence") {
      showViewers(message.Viewers);
    }
  }

  /* Show a version: a keyed update of the top-level blocks, in one step, keeping the scroll position. */
  function show(html, version) {
    if (typeof version === "number" && version === shownVersion) {
      return;
    }
    const scrollX = window.scrollX;
    const scrollY = window.scrollY;
    const template = document.createElement("template");
    template.innerHTML = html;
    replaceBlocks(container, template.content);
    window.scrollTo(scrollX, scrollY);
    shownVersion = typeof version === "number" ? version : shownVersion;
    container.dataset.version = String(shownVersion);
    if (shownVersion === 0) {
      showNotice("Nothing has been published yet. The document will appear here as soon as it is.");
    } else {
      showNotice(html.trim() ? "" : "The document is empty.");
      updatedBox.textContent = `Version ${shownVersion} · updated ${timeFormat.format(new Date())}`;
      updatedBox.hidden = false;
    }
    const heading = container.querySelector("h1, h2, h3, p");
    document.title = heading && heading.textContent.trim() ? `${heading.textContent.trim().slice(0, 80)} · collab` : "collab viewer";
  }

  /*
   * Unchanged blocks keep their DOM nodes (so images are not decoded again and nothing
   * flickers); only new or changed blocks are inserted, all within one task.
   */
  function replaceBlocks(target, fragment) {
    const pool = new Map();
    for (const node of Array.from(target.childNodes)) {
      const key = blockKey(node);
      if (!pool.has(key)) {
        pool.set(key, []);
      }
      pool.get(key).push(node);
    }
    const wanted = Array.from(fragment.childNodes).map((node) => {
      const same = pool.get(blockKey(node));
      return same && same.length ? same.shift() : node;
    });
    const keep = new Set(wanted);
    for (const node of Array.from(target.childNodes)) {
      if (!keep.has(node)) {
        target.removeChild(node);
      }
    }
    let cursor = target.firstChild;
    for (const node of wanted) {
      if (node === cursor) {
        cursor = cursor.nextSibling;
      } else {
        target.insertBefore(node, cursor);
      }
    }
    for (const link of target.querySelectorAll("a[href]")) {
      if (/^https?:/i.test(link.getAttribute("href"))) {
        link.target = "_blank";
      }
    }
  }

  function blockKey(node) {
    return node.nodeType === Node.ELEMENT_NODE ? node.outerHTML : `${node.nodeType}:${node.textContent}`;
  }

  /* Footnote and bookmark links scroll within the page: following them would drop the token from the fragment. */
  container.addEventListener("click", (event) => {
    const link = event.target.closest("a[href^='#']");
    if (!link) {
      return;
    }
    event.preventDefault();
    const target = document.getElementById(decodeURIComponent(link.getAttribute("href").slice(1)));
    if (target) {
      target.scrollIntoView({ block: "start" });
    }
  });

  retryButton.addEventListener("click", () => socket && socket.retryNow());

  // A link that differs only in its fragment does not reload the page: a new token needs a fresh start.
  window.addEventListener("hashchange", () => {
    if (new URLSearchParams(window.location.hash.slice(1)).get("token") !== (token || null)) {
      window.location.reload();
    }
  });

  if (!token) {
    onState("refused", { code: "E1002", words: "the link carries no access token (it should end in #token=…)" });
    return;
  }

  socket = new CollabLiveSocket({
    url: CollabLiveSocket.ownUrl(),
    hello() {
      const first = { Origin: "client", SessionId: sessionId, Token: token, Action: "init", Protocol: 2 };
      if (shownVersion !== null) {
        first.LastVersion = shownVersion;
      }
      return first;
    },
    onMessage,
    onState,
  });
  socket.start();
})();
