/* The "Try Edit in Word" page: its editable area handed to Word with editinword.js. */
(function () {
  "use strict";

  const area = document.getElementById("area");
  const keyInput = document.getElementById("key");
  const toggle = document.getElementById("toggle");
  const stateBox = document.getElementById("state");
  const wordLink = document.getElementById("word-link");
  let editing = null;

  const WORDS = {
    starting: "Making the Word document…",
    opening: "Opening Word…",
    connecting: "Connecting…",
    live: "Editing in Word: changes made there appear below",
    ended: "The Word session has ended: edit here again",
    stopped: "Stopped",
  };

  function showState(state, detail) {
    document.body.dataset.state = state;
    if (state === "reconnecting") {
      stateBox.textContent = detail ? `Connection lost: reconnecting in ${detail} s` : "Reconnecting…";
    } else if (state === "failed" || state === "refused") {
      stateBox.textContent = `Refused: ${detail.words}`;
    } else {
      stateBox.textContent = WORDS[state] || state;
    }
  }

  function finish() {
    editing = null;
    area.contentEditable = "true";
    toggle.textContent = "Edit in Word";
    wordLink.hidden = true;
  }

  toggle.addEventListener("click", () => {
    if (editing) {
      editing.end();
      return;
    }
    const key = keyInput.value.trim();
    if (!key) {
      showState("failed", { words: "paste an integration key first" });
      return;
    }
    area.contentEditable = "false";
    toggle.textContent = "End the Word session";
    editing = CollabEditInWord.start({
      endpoint: window.location.origin,
      key,
      html: area.innerHTML,
      // The server's HTML, sanitised by it: what Word published.
      onHtml(html) {
        area.innerHTML = html;
      },
      onEnded: finish,
      onState(state, detail) {
        showState(state, detail);
        if (state === "opening") {
          wordLink.href = detail.wordUrl;
          wordLink.hidden = false;
        } else if (state === "failed" || state === "refused" || state === "stopped") {
          finish();
        }
      },
    });
  });
})();
