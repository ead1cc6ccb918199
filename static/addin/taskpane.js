/*
 * The Word add-in's task pane (PROTOCOL.md section 8): publishes the open document to a
 * collab session whenever its content may have changed.
 *
 * Captures are debounced, never overlap, and unchanged content is never sent twice in a
 * row. The word token stays in memory (and in the document's properties when the user asks
 * for that): never in a URL or in browser storage. Plain ES5 for older Office webviews.
 *
 * A document's properties may name anybody's session, so the pane shows whose session it shares
 * to from the moment it connects: the title the server gives in its init reply, and the host.
 */
(function () {
  "use strict";

  var DEBOUNCE = 400; // quiet time after a change before capturing
  var MAX_WAIT = 2000; // ...but capture at least this often while changes keep coming
  var SAFETY_EVERY = 5000; // periodic capture where Word has no paragraph events
  var SAFETY_WITH_EVENTS = 15000; // and a slower one where it has them
  var CONFIRM_FOR = 4000;

  var body = document.body;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var statusBox = $("status");
  var statusText = $("status-text");
  var sessionBox = $("session");
  var serverBox = $("server");
  var namedByDocument = $("named-by-document");
  var lastSentBox = $("last-sent");
  var viewersBox = $("viewers");
  var errorBox = $("error");
  var form = $("code-form");
  var codeInput = $("code");
  var rememberBox = $("remember");
  var actions = $("actions");
  var toggleButton = $("toggle");
  var endButton = $("end");
  var switchButton = $("switch");

  // The task pane signs in with a publishing token, not a link's: these two refusals say so.
  // Every other code's words, and which codes are definitive, come from live-socket.js.
  var PUBLISHING_TOKEN_WORDS = {
    E1002: "no publishing token was given",
    E1003: "the publishing token is invalid, revoked or expired"
  };

  var session = null; // {id, token, remember, source, fromDocument, fromLink}
  var socket = null;
  var lastSent = null;
  var unconfirmed = false; // an update went out and the server has not answered it yet
  var serverVersion = null;
  var capturing = false;
  var captureAgain = false;
  var captureTimer = null;
  var firstChangeAt = 0;
  var safetyTimer = null;
  var eventsRegistered = false;
  var paragraphEvents = false;
  var endConfirmTimer = null;

  // A pasted link ".../s/<id>/#token=…" whose token the server names a viewer's: the viewer link given with the code.
  var VIEWER_LINK_WORDS =
    "This is a viewer link: it lets people read the document. To publish, paste the Word publish " +
    "code (collab:…) given with it: create_session prints it, and the admin's \u201cAdd session\u201d " +
    "and the API show it.";

  // Status

  /* A refusal in words: the server's Reason (the token's real role) first, else the pane's or the socket's words. */
  function refusalWords(detail) {
    if (!detail) {
      return "refused";
    }
    return detail.reason || PUBLISHING_TOKEN_WORDS[detail.code] || detail.words || "refused";
  }

  function setStatus(state, text) {
    body.setAttribute("data-state", state);
    statusBox.setAttribute("data-state", state);
    statusText.textContent = text;
  }

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  /* Whose session this is, in the server's words: a document may name anyone's session. */
  function showSession(title) {
    var name = typeof title === "string" && title ? "\u201c" + title + "\u201d" : "Untitled session " + session.id;
    sessionBox.textContent = name + (session.source ? " (" + session.source + ")" : "");
    namedByDocument.hidden = !session.fromDocument;
  }

  function showViewers(count) {
    if (typeof count === "number") {
      viewersBox.textContent = count === 1 ? "1 watching" : count + " watching";
    }
  }

  function clock(date) {
    function two(n) {
      return (n < 10 ? "0" : "") + n;
    }
    return two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds());
  }

  function onState(state, detail) {
    var sharing = state === "connecting" || state === "live" || state === "reconnecting";
    toggleButton.textContent = sharing ? "Stop sharing" : "Resume sharing";
    toggleButton.disabled = state === "ended" || state === "refused";
    endButton.disabled = state !== "live";
    switchButton.hidden = sharing;
    if (state === "connecting") {
      setStatus(state, "Connecting…");
    } else if (state === "live") {
      setStatus(state, "Sharing live");
      showError("");
    } else if (state === "reconnecting") {
      setStatus(state, detail ? "Connection lost: reconnecting in " + detail + " s" : "Reconnecting…");
    } else if (state === "stopped") {
      setStatus(state, "Sharing stopped");
      viewersBox.textContent = "–";
    } else if (state === "ended") {
      setStatus(state, "Session ended");
      viewersBox.textContent = "–";
      stopWatching();
    } else if (state === "refused") {
      setStatus(state, "Refused: " + refusalWords(detail));
      // Only the server knows a token's role: it says so in the Reason of an E1003.
      if (session.fromLink && detail && detail.code === "E1003" && detail.reason) {
        showError(VIEWER_LINK_WORDS);
      }
      viewersBox.textContent = "–";
      stopWatching();
    }
  }

  function onMessage(message) {
    var action = typeof message.Action === "string" ? message.Action.toLowerCase() : "";
    if (action === "init" && message.Success) {
      showSession(message.Title);
      showViewers(message.Viewers);
      // After a reconnect: resend unless the server provably holds what we last sent.
      if (unconfirmed || (serverVersion !== null && message.Version !== serverVersion)) {
        lastSent = null;
      }
      unconfirmed = false;
      serverVersion = message.Version;
      if (session.remember) {
        session.remember = false;
        rememberInDocument(session);
      }
      registerEvents();
      requestCapture(true);
    } else if (action === "get-html" && message.Success) {
      serverVersion = message.Version;
      unconfirmed = false;
    } else if (action === "presence") {
      showViewers(message.Viewers);
    } else if (message.Success === false && !CollabLiveSocket.DEFINITIVE[message.ErrorCode]) {
      unconfirmed = false;
      showError("The server said: " + CollabLiveSocket.describeError(message) + ".");
    }
  }

  // Where the session comes from

  function readDocumentProperties() {
    return Word.run(function (context) {
      var properties = context.document.properties.customProperties;
      properties.load("items/key,items/value");
      return context.sync().then(function () {
        var found = {};
        for (var i = 0; i < properties.items.length; i++) {
          var item = properties.items[i];
          found[String(item.key).toLowerCase()] = item.value;
        }
        return found;
      });
    });
  }

  function rememberInDocument(details) {
    Word.run(function (context) {
      var properties = context.document.properties.customProperties;
      properties.add("sessionId", details.id);
      properties.add("token", details.token);
      return context.sync();
    }).then(null, function (error) {
      showError("Could not store the session in the document: " + describe(error));
    });
  }

  function sameServer(url) {
    var own = [body.getAttribute("data-public-url"), window.location.protocol + "//" + window.location.host];
    var wanted = String(url).replace(/\/+$/, "").toLowerCase();
    for (var i = 0; i < own.length; i++) {
      if (own[i] && own[i].replace(/\/+$/, "").toLowerCase() === wanted) {
        return true;
      }
    }
    return false;
  }

  function decodeBase64Url(text) {
    var padded = text.replace(/-/g, "+").replace(/_/g, "/");
    while (padded.length % 4) {
      padded += "=";
    }
    // UTF-8 bytes to a string, without TextDecoder (absent from older webviews).
    return decodeURIComponent(escape(window.atob(padded)));
  }

  /* A publish code ("collab:" + base64url JSON {s, t, u}) or a link ".../s/<id>/#token=<token>". */
  function parseCode(text) {
    var value = String(text || "").replace(/\s+/g, "");
    var details;
    if (!value) {
      return { error: "Paste the publish code or link you were given." };
    }
    if (value.slice(0, 7).toLowerCase() === "collab:") {
      try {
        var data = JSON.parse(decodeBase64Url(value.slice(7)));
        details = { id: data.s, token: data.t, server: data.u };
      } catch (error) {
        return { error: "This publish code is damaged: copy it again, whole." };
      }
    } else {
      var match = /^(https?:\/\/[^/]+)\/s\/([A-Za-z0-9_-]+)\/?#(?:.*&)?token=([^&]+)/.exec(value);
      if (!match) {
        return { error: "This is neither a publish code (collab:…) nor a session link (…/s/…/#token=…)." };
      }
      details = { id: match[2], token: decodeURIComponent(match[3]), server: match[1], fromLink: true };
    }
    if (typeof details.id !== "string" || !details.id || typeof details.token !== "string" || !details.token) {
      return { error: "This code lacks the session or its token." };
    }
    if (details.server && !sameServer(details.server)) {
      return {
        error:
          "This code is for the collab server at " +
          details.server +
          ". Install that server's add-in (" +
          details.server.replace(/\/+$/, "") +
          "/addin/manifest.xml) to publish there."
      };
    }
    return details;
  }

  // Sharing

  function begin(details) {
    session = details;
    sessionBox.textContent = details.id + (details.source ? " (" + details.source + ")" : "");
    // The pane only ever connects to the server that served it.
    serverBox.textContent = window.location.host;
    namedByDocument.hidden = true;
    form.hidden = true;
    actions.hidden = false;
    lastSent = null;
    serverVersion = null;
    unconfirmed = false;
    socket = new CollabLiveSocket({
      url: CollabLiveSocket.ownUrl(),
      hello: function () {
        return {
          Origin: "word",
          SessionId: session.id,
          Token: session.token,
          Action: "init",
          Protocol: 2,
          Features: ["refusal-reasons"]
        };
      },
      onMessage: onMessage,
      onState: onState
    });
    socket.start();
  }

  function showForm() {
    form.hidden = false;
    actions.hidden = true;
    sessionBox.textContent = "none yet";
    serverBox.textContent = "\u2013";
    namedByDocument.hidden = true;
    setStatus("idle", "Not connected");
    codeInput.focus();
  }

  function stopWatching() {
    clearTimeout(captureTimer);
    captureTimer = null;
    firstChangeAt = 0;
  }

  // Captures

  /* Ask for a capture: soon after the changes stop, but no later than MAX_WAIT after the first one. */
  function requestCapture(now) {
    var time = Date.now();
    if (!firstChangeAt) {
      firstChangeAt = time;
    }
    var wait = now ? 0 : Math.max(0, Math.min(DEBOUNCE, firstChangeAt + MAX_WAIT - time));
    clearTimeout(captureTimer);
    captureTimer = setTimeout(capture, wait);
  }

  function capture() {
    captureTimer = null;
    firstChangeAt = 0;
    if (!socket || !socket.isLive()) {
      return;
    }
    if (capturing) {
      captureAgain = true;
      return;
    }
    capturing = true;
    var done = function () {
      capturing = false;
      if (captureAgain) {
        captureAgain = false;
        requestCapture(false);
      }
    };
    Word.run(function (context) {
      var ooxml = context.document.body.getOoxml();
      return context.sync().then(function () {
        return ooxml.value;
      });
    })
      .then(function (content) {
        if (content === lastSent || !socket || !socket.isLive()) {
          return;
        }
        var sent = socket.send({
          Origin: "word",
          SessionId: session.id,
          Action: "update-ooxml",
          PayloadType: "ooxml",
          Content: content
        });
        if (sent) {
          lastSent = content;
          unconfirmed = true;
          lastSentBox.textContent = clock(new Date());
        }
      })
      .then(done, function (error) {
        showError("Could not read the document: " + describe(error));
        done();
      });
  }

  function onDocumentChange() {
    if (socket && socket.isLive()) {
      requestCapture(false);
    }
  }

  function registerEvents() {
    if (eventsRegistered) {
      return;
    }
    eventsRegistered = true;
    Office.context.document.addHandlerAsync(Office.EventType.DocumentSelectionChanged, onDocumentChange);
    var requirements = Office.context.requirements;
    if (requirements.isSetSupported("WordApi", "1.6") || requirements.isSetSupported("WordApiDesktop", "1.1")) {
      Word.run(function (context) {
        var doc = context.document;
        doc.onParagraphAdded.add(onDocumentChange);
        doc.onParagraphChanged.add(onDocumentChange);
        doc.onParagraphDeleted.add(onDocumentChange);
        return context.sync();
      }).then(
        function () {
          paragraphEvents = true;
          startSafetyCaptures();
        },
        function () {
          startSafetyCaptures();
        }
      );
    } else {
      startSafetyCaptures();
    }
  }

  function startSafetyCaptures() {
    clearInterval(safetyTimer);
    safetyTimer = setInterval(function () {
      if (socket && socket.isLive() && !captureTimer) {
        capture();
      }
    }, paragraphEvents ? SAFETY_WITH_EVENTS : SAFETY_EVERY);
  }

  function describe(error) {
    return (error && (error.message || error.code)) || String(error);
  }

  // Buttons

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var details = parseCode(codeInput.value);
    if (details.error) {
      showError(details.error);
      return;
    }
    showError("");
    codeInput.value = "";
    details.remember = rememberBox.checked;
    details.source = "from a pasted code";
    begin(details);
  });

  toggleButton.addEventListener("click", function () {
    if (!socket) {
      return;
    }
    if (socket.state === "stopped") {
      socket.start();
    } else {
      socket.stop("stopped");
    }
  });

  endButton.addEventListener("click", function () {
    if (!endConfirmTimer) {
      endButton.textContent = "Click again to end it for everyone";
      endConfirmTimer = setTimeout(resetEndButton, CONFIRM_FOR);
      return;
    }
    resetEndButton();
    if (!socket || !socket.send({ Action: "end-session" })) {
      showError("Not connected: the session cannot be ended right now.");
    }
  });

  function resetEndButton() {
    clearTimeout(endConfirmTimer);
    endConfirmTimer = null;
    endButton.textContent = "End session";
  }

  switchButton.addEventListener("click", function () {
    if (socket) {
      socket.stop("stopped");
      socket = null;
    }
    session = null;
    showError("");
    showForm();
  });

  // Start

  if (typeof Office === "undefined" || typeof CollabLiveSocket === "undefined") {
    setStatus("refused", "Could not load");
    showError("Microsoft's office.js did not load: check the network connection, then reopen the task pane.");
    return;
  }

  Office.onReady(function (info) {
    if (!info || info.host !== Office.HostType.Word) {
      setStatus("idle", "Not in Word");
      $("outside").hidden = false;
      return;
    }
    readDocumentProperties().then(
      function (found) {
        if (found.sessionid && found.token) {
          begin({
            id: String(found.sessionid),
            token: String(found.token),
            source: "from this document",
            fromDocument: true
          });
        } else {
          showForm();
        }
      },
      function (error) {
        showForm();
        showError("Could not read the document's properties: " + describe(error));
      }
    );
  });
})();
