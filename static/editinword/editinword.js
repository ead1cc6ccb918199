/*
 * Edit in Word for any web page, without TinyMCE (README "Edit in Word").
 *
 *   <script src="https://collab.example/static/shared/live-socket.js"></script>
 *   <script src="https://collab.example/static/shared/html-patch.js"></script>
 *   <script src="https://collab.example/static/editinword/editinword.js"></script>
 *   const editing = CollabEditInWord.start({
 *     endpoint: "https://collab.example", key: "<integration key>", html: area.innerHTML,
 *     onHtml(html, version) {...}, onEnded(html) {...}, onState(state, detail) {...},
 *   });
 *   editing.end();
 *
 * It posts the HTML for a launch link (PROTOCOL.md section 10), opens the link (Word), and
 * follows the session over WebSocket version 2 as a client signed in with the key: each
 * version Word publishes goes to onHtml, as a whole or through html-patch; after a dropped
 * connection it reconnects by itself with LastVersion, so it is sent only what it missed.
 * States: starting, opening (detail: {wordUrl}), connecting, live, reconnecting (detail:
 * seconds until the next try), ended, refused and failed (detail: {code, words}).
 */
var CollabEditInWord = (function () {
  "use strict";

  const GENERATE_PATH = "/edit-in-word/generate-word-launch-link";

  function noop() {}

  function socketUrl(endpoint) {
    return endpoint.replace(/^http/, "ws") + "/ws";
  }

  async function askForLaunchLink(endpoint, key, html) {
    const answer = await fetch(endpoint + GENERATE_PATH, {
      method: "POST",
      headers: { "Content-Type": "application/json", Token: key },
      body: JSON.stringify({ Html: html }),
    });
    let body = null;
    try {
      body = await answer.json();
    } catch (error) {
      body = null;
    }
    if (!answer.ok || !body || !body.success) {
      const words = (body && body.message) || "the server answered " + answer.status;
      throw Object.assign(new Error(words), { code: (body && body.errorCode) || null });
    }
    return body;
  }

  function start(options) {
    const endpoint = String(options.endpoint || "").replace(/\/+$/, "");
    const key = options.key;
    const onHtml = options.onHtml || noop;
    const onEnded = options.onEnded || noop;
    const onState = options.onState || noop;
    const handle = { sessionId: null, wordUrl: null, state: "starting", version: null, html: null, end };
    const patch = CollabHtmlPatch;
    let socket = null;
    let ending = false;
    let finished = false;
    let patchesGranted = false;
    let shownBlocks = null;
    let queue = Promise.resolve(); // document messages are handled one after another, in order

    function report(state, detail) {
      handle.state = state;
      onState(state, detail);
      if (state === "live" && ending) {
        sendEnd();
      } else if (state === "ended" && !finished) {
        finished = true;
        onEnded(handle.html);
      }
    }

    function sendEnd() {
      socket.send({ Origin: "client", SessionId: handle.sessionId, Action: "end-session" });
    }

    function show(html, version) {
      if (version === handle.version) {
        return;
      }
      handle.html = html;
      handle.version = version;
      onHtml(html, version);
    }

    async function applyPatch(message) {
      if (message.Version === handle.version) {
        return;
      }
      const fits = shownBlocks && message.BaseVersion === handle.version;
      const blocks = fits ? patch.patchedBlocks(shownBlocks, message.Ops) : null;
      const html = blocks && blocks.join("");
      if (!blocks || (await patch.sha256Hex(html)) !== message.Checksum) {
        shownBlocks = null;
        socket.send({ Action: "get-html" });
        return;
      }
      shownBlocks = blocks;
      show(html, message.Version);
    }

    function onMessage(message) {
      const action = typeof message.Action === "string" ? message.Action.toLowerCase() : "";
      if (action === "init" && message.Success) {
        patchesGranted = Array.isArray(message.Features) && message.Features.includes("html-patch");
      } else if (action === "get-html" && message.Success) {
        const html = message.Content || "";
        queue = queue.then(() => {
          shownBlocks = patchesGranted ? patch.blocksFromLengths(html, message.Blocks) : null;
          show(html, message.Version);
        });
      } else if (action === "html-patch" && message.Success) {
        queue = queue.then(() => applyPatch(message));
      }
      queue = queue.catch((error) => console.warn("editinword: could not show an update", error));
    }

    function follow() {
      socket = new CollabLiveSocket({
        url: options.websocketUrl || socketUrl(endpoint),
        hello() {
          const first = { Origin: "client", SessionId: handle.sessionId, Token: key, Action: "init", Protocol: 2 };
          if (patch.canPatch) {
            first.Features = ["html-patch"];
          }
          if (handle.version !== null) {
            first.LastVersion = handle.version;
          }
          return first;
        },
        onMessage,
        onState: report,
      });
      socket.start();
    }

    function end() {
      if (finished) {
        return;
      }
      ending = true;
      if (socket && socket.isLive()) {
        sendEnd();
      }
    }

    report("starting");
    askForLaunchLink(endpoint, key, options.html || "").then(
      (answer) => {
        handle.sessionId = answer.sessionId;
        handle.wordUrl = answer.wordUrl;
        report("opening", { wordUrl: answer.wordUrl });
        window.open(answer.wordUrl, "_blank");
        follow();
      },
      (error) => {
        finished = true;
        report("failed", { code: error.code || null, words: error.message });
      },
    );
    return handle;
  }

  return Object.freeze({ start });
})();
