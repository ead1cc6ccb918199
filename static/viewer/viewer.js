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

  const { canPatch, blocksFromLengths, patchedBlocks, sha256Hex } = CollabHtmlPatch;
  const HIGHLIGHT_MS = 2000;
  const ENDED_CODES = new Set(["E1001", "E1006"]); // the session is unknown or has ended
  let patchesGranted = false;
  let shownBlocks = null; // the shown version's top-level blocks, as the server split them
  let documentQueue = Promise.resolve(); // document messages are handled one after another, in order
  const nodeKeys = new WeakMap(); // a block's key as it arrived, before the page touched it (links, highlight)

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

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
      // An unknown or ended session is no refusal of the reader: the one wording says what it is.
      const ended = ENDED_CODES.has(detail.code);
      showStatus(state, ended ? "Session ended" : `Access refused: ${detail.words}`);
      showNotice(ended ? `${capitalised(detail.words)}.` : `This document cannot be shown: ${detail.words}.`);
      // A revoked token loses what it was shown too.
      container.replaceChildren();
      viewersBox.hidden = true;
      updatedBox.hidden = true;
    }
  }

  function capitalised(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
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
      patchesGranted = Array.isArray(message.Features) && message.Features.includes("html-patch");
      showViewers(message.Viewers);
    } else if ((action === "get-html" || action === "html-patch") && message.Success) {
      documentQueue = documentQueue.then(() => (action === "get-html" ? showFull(message) : applyPatch(message)));
      documentQueue = documentQueue.catch((error) => {
        console.warn("could not show an update", error);
        askForFullDocument();
      });
    } else if (action === "presence") {
      showViewers(message.Viewers);
    }
  }

  function showFull(message) {
    const html = message.Content || "";
    shownBlocks = patchesGranted ? blocksFromLengths(html, message.Blocks) : null;
    show(html, message.Version, message.PublishedAt);
  }

  /* Apply an html-patch to the shown blocks; anything that does not fit asks for the whole document. */
  async function applyPatch(message) {
    if (message.Version === shownVersion) {
      return;
    }
    const blocks = shownBlocks && message.BaseVersion === shownVersion ? patchedBlocks(shownBlocks, message.Ops) : null;
    const html = blocks && blocks.join("");
    if (!blocks || (await sha256Hex(html)) !== message.Checksum) {
      askForFullDocument();
      return;
    }
    shownBlocks = blocks;
    show(html, message.Version, message.PublishedAt);
  }

  function askForFullDocument() {
    shownBlocks = null;
    if (socket) {
      socket.send({ Action: "get-html" });
    }
  }

  /* "Version N · updated <time>", the time being when the server says the version was published. */
  function showUpdated(publishedAt) {
    const published = publishedAt ? new Date(publishedAt) : null;
    let text = `Version ${shownVersion}`;
    if (published && !Number.isNaN(published.getTime())) {
      const today = published.toDateString() === new Date().toDateString();
      text += ` · updated ${(today ? timeFormat : dateTimeFormat).format(published)}`;
      updatedBox.dateTime = publishedAt;
      updatedBox.title = published.toISOString();
    } else {
      updatedBox.removeAttribute("datetime");
      updatedBox.removeAttribute("title");
    }
    updatedBox.textContent = text;
    updatedBox.hidden = false;
  }

  /* Show a version: a keyed update of the top-level blocks, in one step, keeping the scroll position. */
  function show(html, version, publishedAt) {
    if (typeof version === "number" && version === shownVersion) {
      return;
    }
    const scrollX = window.scrollX;
    const scrollY = window.scrollY;
    const template = document.createElement("template");
    template.innerHTML = html;
    replaceBlocks(container, template.content, shownVersion !== null && shownVersion > 0);
    window.scrollTo(scrollX, scrollY);
    shownVersion = typeof version === "number" ? version : shownVersion;
    container.dataset.version = String(shownVersion);
    if (shownVersion === 0) {
      showNotice("Nothing has been published yet. The document will appear here as soon as it is.");
    } else {
      showNotice(html.trim() ? "" : "The document is empty.");
      showUpdated(publishedAt);
    }
    // The page title comes from the document's own first words, not its running header.
    const heading = Array.from(container.querySelectorAll("h1, h2, h3, p")).find(
      (element) => !element.closest(".doc-header, .doc-footer"),
    );
    document.title = heading && heading.textContent.trim() ? `${heading.textContent.trim().slice(0, 80)} · collab` : "collab viewer";
  }

  /*
   * Unchanged blocks keep their DOM nodes (so images are not decoded again and nothing
   * flickers); only new or changed blocks are inserted, all within one task, and with
   * `highlight` they are marked for a moment.
   */
  function replaceBlocks(target, fragment, highlight) {
    const pool = new Map();
    for (const node of Array.from(target.childNodes)) {
      const key = nodeKeys.get(node) || blockKey(node);
      if (!pool.has(key)) {
        pool.set(key, []);
      }
      pool.get(key).push(node);
    }
    const added = [];
    const wanted = Array.from(fragment.childNodes).map((node) => {
      const key = blockKey(node);
      const same = pool.get(key);
      if (same && same.length) {
        return same.shift();
      }
      nodeKeys.set(node, key);
      if (node.nodeType === Node.ELEMENT_NODE) {
        added.push(node);
      }
      return node;
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
    if (highlight) {
      for (const node of added) {
        node.classList.add("collab-changed");
      }
      setTimeout(() => added.forEach((node) => node.classList.remove("collab-changed")), HIGHLIGHT_MS);
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
      if (canPatch) {
        first.Features = ["html-patch"];
      }
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
