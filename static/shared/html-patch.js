/*
 * html-patch (README "Protocol extensions"): rebuilding a version from the shown one's
 * top-level blocks and a patch's operations, and the checksum that proves the result.
 * Shared by the viewer page and Edit in Word's script (editinword/editinword.js).
 */
var CollabHtmlPatch = (function () {
  "use strict";

  // Checking a patch's result needs SubtleCrypto, which browsers offer in secure contexts
  // only (https, and http on localhost/127.0.0.1).
  const canPatch = Boolean(window.isSecureContext && window.crypto && window.crypto.subtle && window.TextEncoder);

  /* Cut a full document at the block lengths the server sent (UTF-16 code units, like JavaScript strings). */
  function blocksFromLengths(html, lengths) {
    if (!Array.isArray(lengths)) {
      return null;
    }
    const blocks = [];
    let start = 0;
    for (const length of lengths) {
      blocks.push(html.slice(start, start + length));
      start += length;
    }
    return start === html.length ? blocks : null;
  }

  /* The blocks an html-patch's ops make of the `old` ones; null when they do not fit. */
  function patchedBlocks(old, ops) {
    if (!Array.isArray(ops)) {
      return null;
    }
    const blocks = [];
    let cursor = 0;
    for (const op of ops) {
      const kind = Array.isArray(op) ? op[0] : null;
      if (kind === "keep" || kind === "delete" || kind === "replace") {
        const count = op[1];
        if (!Number.isInteger(count) || count < 0 || cursor + count > old.length) {
          return null;
        }
        if (kind === "keep") {
          blocks.push(...old.slice(cursor, cursor + count));
        }
        cursor += count;
      }
      if (kind === "insert" || kind === "replace") {
        const added = op[op.length - 1];
        if (!Array.isArray(added) || !added.every((block) => typeof block === "string")) {
          return null;
        }
        blocks.push(...added);
      } else if (kind !== "keep" && kind !== "delete") {
        return null;
      }
    }
    return cursor === old.length ? blocks : null;
  }

  async function sha256Hex(text) {
    const digest = await window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  return Object.freeze({ canPatch, blocksFromLengths, patchedBlocks, sha256Hex });
})();
