/*
 * A stand-in for Microsoft's office.js, served in its place by the browser tests.
 *
 * It implements only what the task pane uses: Office.onReady, selection-change handlers,
 * requirement sets, and Word.run with body.getOoxml(), custom properties, paragraph events
 * and context.sync(). The test sets, before the page loads:
 *   window.__stubDocuments    Flat OPC strings; getOoxml() returns the current one
 *   window.__stubProperties   the document's custom properties, {key: value}
 *   window.__stubRequirements {"WordApi": "1.6"}: the requirement sets the host supports
 *   window.__stubCaptureMs    how long a getOoxml() round trip takes (default 60)
 *   window.__stubHost         what Office.onReady reports as the host (default "Word")
 * and drives it through window.__stub: setDocument(i), fire(kind, times), counts, properties.
 */
(function () {
  "use strict";

  const stub = {
    documents: window.__stubDocuments || [""],
    current: 0,
    properties: Object.assign({}, window.__stubProperties || {}),
    requirements: window.__stubRequirements || { WordApi: "1.6" },
    captureMs: typeof window.__stubCaptureMs === "number" ? window.__stubCaptureMs : 60,
    handlers: { selection: [], paragraphAdded: [], paragraphChanged: [], paragraphDeleted: [] },
    counts: { getOoxml: 0, inFlight: 0, maxInFlight: 0, sync: 0 },
    setDocument(index) {
      this.current = index;
    },
    fire(kind, times = 1) {
      const handlers = this.handlers[kind];
      if (!handlers) {
        throw new Error(`no such event: ${kind}`);
      }
      for (let i = 0; i < times; i += 1) {
        for (const handler of handlers) {
          handler({ type: kind });
        }
      }
      return handlers.length;
    },
  };
  window.__stub = stub;

  function compareVersions(have, want) {
    const a = String(have).split(".").map(Number);
    const b = String(want).split(".").map(Number);
    for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
      const difference = (a[i] || 0) - (b[i] || 0);
      if (difference) {
        return difference;
      }
    }
    return 0;
  }

  /* A request context: calls queue work that runs on context.sync(), as in the real API. */
  class RequestContext {
    constructor() {
      this.queue = [];
      this.reads = 0;
      const queue = this.queue;
      const context = this;
      const eventSlot = (kind) => ({
        add(handler) {
          queue.push(() => stub.handlers[kind].push(handler));
          return { remove() {} };
        },
      });
      const customProperties = {
        items: undefined,
        load() {
          queue.push(() => {
            customProperties.items = Object.keys(stub.properties).map((key) => ({
              key,
              value: stub.properties[key],
            }));
          });
          return customProperties;
        },
        add(key, value) {
          queue.push(() => {
            stub.properties[key] = value;
          });
          return { key, value };
        },
      };
      this.document = {
        body: {
          getOoxml() {
            const result = { value: undefined };
            context.reads += 1;
            queue.push(() => {
              stub.counts.getOoxml += 1;
              result.value = stub.documents[stub.current];
            });
            return result;
          },
        },
        properties: { customProperties },
        onParagraphAdded: eventSlot("paragraphAdded"),
        onParagraphChanged: eventSlot("paragraphChanged"),
        onParagraphDeleted: eventSlot("paragraphDeleted"),
      };
    }

    sync() {
      stub.counts.sync += 1;
      const work = this.queue.splice(0);
      const reads = this.reads;
      this.reads = 0;
      if (!reads) {
        return Promise.resolve().then(() => work.forEach((step) => step()));
      }
      // Reading the body takes a while in real Word: long enough to see overlapping captures.
      stub.counts.inFlight += 1;
      stub.counts.maxInFlight = Math.max(stub.counts.maxInFlight, stub.counts.inFlight);
      return new Promise((resolve) => setTimeout(resolve, stub.captureMs)).then(() => {
        stub.counts.inFlight -= 1;
        work.forEach((step) => step());
      });
    }
  }

  window.Word = {
    run(batch) {
      return Promise.resolve().then(() => batch(new RequestContext()));
    },
  };

  window.Office = {
    HostType: { Word: "Word" },
    EventType: { DocumentSelectionChanged: "documentSelectionChanged" },
    AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
    context: {
      document: {
        addHandlerAsync(eventType, handler, callback) {
          if (eventType === "documentSelectionChanged") {
            stub.handlers.selection.push(handler);
          }
          if (typeof callback === "function") {
            callback({ status: "succeeded" });
          }
        },
      },
      requirements: {
        isSetSupported(name, version) {
          const have = stub.requirements[name];
          return Boolean(have) && compareVersions(have, version || "1.1") >= 0;
        },
      },
    },
    onReady(callback) {
      const info = "__stubHost" in window ? { host: window.__stubHost, platform: null } : { host: "Word", platform: "PC" };
      return new Promise((resolve) => {
        setTimeout(() => {
          if (typeof callback === "function") {
            callback(info);
          }
          resolve(info);
        }, 0);
      });
    },
  };
})();
