/*
 * collab's WebSocket client, shared by the viewer page and the Word add-in's task pane.
 *
 * It signs in with its first message (never in the URL), keeps the connection alive with
 * version 2 pings, and reconnects with jittered exponential backoff until the server
 * refuses for good (E1001-E1003, E1006) or the session ends. Plain ES5 on purpose: the
 * task pane also runs in the older webviews of desktop Office.
 */
var CollabLiveSocket = (function () {
  "use strict";

  var ERROR_WORDS = Object.freeze({
    E1001: "this session has ended or does not exist",
    E1002: "the link carries no access token",
    E1003: "the link's access token is invalid, revoked or expired",
    E1004: "the server did not recognise a request",
    E1006: "this session has ended or does not exist",
    E1007: "the connection was not signed in",
    E1008: "this token is not allowed to do that",
    E1009: "the document is larger than the server accepts",
    E1010: "the server could not read a message",
    E1011: "too many messages were sent too quickly",
    E1012: "signing in took too long",
    E2001: "the server failed to process a message",
    E2002: "the document could not be converted"
  });
  // After these the server has closed the socket for good: retrying cannot help.
  var DEFINITIVE = Object.freeze({ E1001: true, E1002: true, E1003: true, E1006: true });

  var BASE_DELAY = 500;
  var MAX_DELAY = 30000;
  var STABLE_AFTER = 10000; // a connection live this long resets the backoff
  var SIGN_IN_WITHIN = 15000;
  var PING_EVERY = 20000;
  var PONG_WITHIN = 10000;

  function describeError(message) {
    var words = ERROR_WORDS[message.ErrorCode] || "the server reported an error";
    if (message.ErrorCode === "E2002" && typeof message.Content === "string") {
      var colon = message.Content.indexOf(": ");
      if (colon >= 0) {
        words += " (" + message.Content.slice(colon + 2) + ")";
      }
    }
    return words;
  }

  function backoffDelay(attempt) {
    var ceiling = Math.min(MAX_DELAY, BASE_DELAY * Math.pow(2, attempt));
    // Jitter: a restarted server is not met by every page at the same instant.
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  function noop() {}

  /*
   * options: url, hello() returning the first message, onMessage(message),
   * onState(state, detail) with state one of connecting, live, reconnecting (detail:
   * seconds until the next try), ended, refused (detail: {code, words, reason: the server's Reason
   * when the page asked for the refusal-reasons feature, else ""}), stopped.
   */
  function LiveSocket(options) {
    this.url = options.url;
    this.hello = options.hello;
    this.onMessage = options.onMessage || noop;
    this.onState = options.onState || noop;
    this.socket = null;
    this.state = "stopped";
    this.stopped = true;
    this.attempt = 0;
    this.timers = {};
    var self = this;
    if (typeof window !== "undefined" && window.addEventListener) {
      window.addEventListener("online", function () {
        if (self.state === "reconnecting") {
          self.retryNow();
        }
      });
    }
  }

  // For the pages (read-only): the words of each error code, and the codes after which no retry can help.
  LiveSocket.ERROR_WORDS = ERROR_WORDS;
  LiveSocket.DEFINITIVE = DEFINITIVE;
  LiveSocket.describeError = describeError;
  LiveSocket.backoffDelay = backoffDelay;

  LiveSocket.prototype.setState = function (state, detail) {
    this.state = state;
    this.onState(state, detail);
  };

  LiveSocket.prototype.start = function () {
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  };

  /* Stop for good, saying why: "stopped" by the user, "ended", or "refused". */
  LiveSocket.prototype.stop = function (state, detail) {
    this.stopped = true;
    this.clearTimers();
    this.abandon();
    this.setState(state || "stopped", detail);
  };

  LiveSocket.prototype.retryNow = function () {
    if (this.stopped || this.socket) {
      return;
    }
    this.clearTimers();
    this.connect();
  };

  LiveSocket.prototype.isLive = function () {
    return this.state === "live";
  };

  /* Send one message on a signed-in socket; false when there is none. */
  LiveSocket.prototype.send = function (message) {
    if (!this.socket || this.state !== "live" || this.socket.readyState !== 1) {
      return false;
    }
    this.socket.send(JSON.stringify(message));
    return true;
  };

  LiveSocket.prototype.connect = function () {
    var self = this;
    var socket;
    this.ended = false;
    this.refusal = null;
    this.liveSince = 0;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", 0);
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.refusal = { code: null, words: "the server address is not valid" };
      this.stop("refused", this.refusal);
      return;
    }
    this.socket = socket;
    socket.onopen = function () {
      socket.send(JSON.stringify(self.hello()));
      self.later("signIn", SIGN_IN_WITHIN, function () {
        self.abandon();
        self.schedule();
      });
    };
    socket.onmessage = function (event) {
      if (socket !== self.socket) {
        return;
      }
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (!message || typeof message !== "object") {
        return;
      }
      self.heard(message);
    };
    socket.onclose = function (event) {
      if (socket !== self.socket) {
        return;
      }
      self.socket = null;
      self.closed(event.code);
    };
  };

  LiveSocket.prototype.heard = function (message) {
    var action = typeof message.Action === "string" ? message.Action.toLowerCase() : "";
    this.clear("pong");
    if (action === "init" && message.Success) {
      this.clear("signIn");
      this.liveSince = Date.now();
      this.keepAlive();
      this.setState("live");
    } else if (action === "end-session" && message.Success) {
      this.ended = true;
    } else if (message.Success === false && DEFINITIVE[message.ErrorCode]) {
      this.refusal = {
        code: message.ErrorCode,
        words: describeError(message),
        reason: typeof message.Reason === "string" ? message.Reason : ""
      };
    }
    this.onMessage(message);
  };

  LiveSocket.prototype.closed = function (code) {
    this.clearTimers();
    if (this.liveSince && Date.now() - this.liveSince >= STABLE_AFTER) {
      this.attempt = 0;
    }
    if (this.stopped) {
      return;
    }
    if (this.ended) {
      this.stop("ended");
    } else if (this.refusal) {
      this.stop("refused", this.refusal);
    } else if (code === 4401) {
      this.stop("refused", { code: null, words: "the server refused the sign-in" });
    } else {
      this.schedule();
    }
  };

  /* Wait, counting down, then try again. */
  LiveSocket.prototype.schedule = function () {
    var self = this;
    var delay = backoffDelay(this.attempt);
    var due = Date.now() + delay;
    this.attempt += 1;
    this.clearTimers();
    this.setState("reconnecting", Math.ceil(delay / 1000));
    this.later("retry", delay, function () {
      self.clear("countdown");
      self.connect();
    });
    this.timers.countdown = setInterval(function () {
      var left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      self.setState("reconnecting", left);
    }, 1000);
  };

  /* Version 2 pings: a connection that silently died is noticed within PING_EVERY + PONG_WITHIN. */
  LiveSocket.prototype.keepAlive = function () {
    var self = this;
    clearInterval(this.timers.ping);
    this.timers.ping = setInterval(function () {
      if (!self.socket || self.socket.readyState !== 1) {
        return;
      }
      self.socket.send(JSON.stringify({ Action: "ping" }));
      self.later("pong", PONG_WITHIN, function () {
        self.abandon();
        self.closed(1006);
      });
    }, PING_EVERY);
  };

  /* Drop the current socket without waiting for its close handshake. */
  LiveSocket.prototype.abandon = function () {
    var socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      try {
        socket.close(1000);
      } catch (error) {
        // Already closing: nothing to do.
      }
    }
  };

  LiveSocket.prototype.later = function (name, delay, callback) {
    this.clear(name);
    this.timers[name] = setTimeout(callback, delay);
  };

  LiveSocket.prototype.clear = function (name) {
    clearTimeout(this.timers[name]);
    clearInterval(this.timers[name]);
    delete this.timers[name];
  };

  LiveSocket.prototype.clearTimers = function () {
    for (var name in this.timers) {
      if (Object.prototype.hasOwnProperty.call(this.timers, name)) {
        this.clear(name);
      }
    }
  };

  /* The ws(s) URL of the server that served this page. */
  LiveSocket.ownUrl = function () {
    return (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + "/ws";
  };

  return LiveSocket;
})();
