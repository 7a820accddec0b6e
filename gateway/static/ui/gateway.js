// The gateway's canonical WebSocket protocol for the browser (gateway/protocol/PROTOCOL.md):
// connect.challenge → req "connect" (no credentials: the login's session cookie
// authenticates the upgrade) → hello-ok; then req/res and events. Reconnects with
// exponential backoff and tells the page through callbacks.

const PROTOCOL = { min: 3, max: 4 };
const BACKOFF_MS = { first: 500, max: 15000 };
const REQUEST_TIMEOUT_MS = 30000;

export class GatewayError extends Error {
  constructor(code, message, details) {
    super(message || code || "request failed");
    this.code = code || "UNAVAILABLE";
    this.details = details;
  }
}

function randomId() {
  // crypto.randomUUID needs a secure context; a phone on http://<tailnet-ip> has none.
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function readConfig() {
  const node = document.getElementById("ui-config");
  return node ? JSON.parse(node.textContent) : {};
}

/**
 * The HTTP bridge (POST /bridge/send, GET /bridge/poll) behind a WebSocket's interface
 * (send, close, onopen, onmessage, onclose): used when a proxy refuses the WebSocket upgrade.
 * Polls acknowledge by cursor what the previous poll returned (PROTOCOL.md "HTTP bridge").
 */
export class BridgeSocket {
  constructor() {
    this.base = `${location.origin}/bridge`;
    this.session = null;
    this.cursor = 0;
    this.closed = false;
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.outbox = Promise.resolve();
    setTimeout(() => this._start(), 0);
  }

  async _post(frames, query = "") {
    const headers = { "content-type": "application/json" };
    if (this.session) headers["x-wingman-session"] = this.session;
    const response = await fetch(`${this.base}/send${query}`, {
      method: "POST",
      headers,
      body: JSON.stringify(frames),
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(`bridge send: HTTP ${response.status}`);
    const answer = await response.json();
    this.session = answer.session;
    return answer;
  }

  async _start() {
    try {
      await this._post([]);
    } catch (error) {
      this._end(1006, String(error));
      return;
    }
    if (this.onopen) this.onopen();
    this._poll();
  }

  async _poll() {
    while (!this.closed) {
      let answer;
      try {
        const query = `session=${encodeURIComponent(this.session)}&cursor=${this.cursor}&timeout=25000`;
        const response = await fetch(`${this.base}/poll?${query}`, { credentials: "same-origin", cache: "no-store" });
        if (!response.ok) {
          this._end(1006, `bridge poll: HTTP ${response.status}`);
          return;
        }
        answer = await response.json();
      } catch (error) {
        this._end(1006, String(error));
        return;
      }
      for (const item of answer.frames) {
        if (this.closed) return;
        if (this.onmessage) this.onmessage({ data: JSON.stringify(item.frame) });
      }
      this.cursor = answer.cursor;
      if (answer.closed !== null && answer.frames.length === 0) {
        this._end(answer.closed, "");
        return;
      }
    }
  }

  send(text) {
    // one send after the other: the gateway sees the frames in order
    this.outbox = this.outbox
      .then(() => this._post([JSON.parse(text)]))
      .catch((error) => this._end(1006, String(error)));
  }

  close(code = 1000, reason = "") {
    if (this.closed) return;
    if (this.session) {
      const headers = { "content-type": "application/json", "x-wingman-session": this.session };
      fetch(`${this.base}/send?close=1`, { method: "POST", headers, body: "[]", keepalive: true }).catch(() => {});
    }
    this._end(code, reason);
  }

  _end(code, reason) {
    if (this.closed) return;
    this.closed = true;
    if (this.onclose) this.onclose({ code, reason });
  }
}

export class GatewayClient {
  /**
   * @param {object} options
   * @param {string} options.path       WebSocket path on this host ("/ws")
   * @param {string} options.version    client version for presence
   * @param {(hello: object, again: boolean) => void} [options.onReady]  after each hello-ok
   * @param {(event: string, payload: any) => void} [options.onEvent]
   * @param {(state: string, detail?: object) => void} [options.onState]
   *   "connecting" | "open" | "reconnecting" {inMs, attempt, reason} | "unauthorized" {message}
   */
  constructor({ path, version, onReady, onEvent, onState }) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}${path}`;
    this.version = version || "0";
    this.instanceId = `ui-${randomId()}`;
    this.onReady = onReady || (() => {});
    this.onEvent = onEvent || (() => {});
    this.onState = onState || (() => {});
    this.pending = new Map();
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    this.everReady = false;
    this.stopped = false;
    this.timer = null;
    this.nextId = 1;
    // "auto": WebSocket, and the HTTP bridge when a WebSocket never opens (a proxy refused
    // the upgrade); ?transport=http or ?transport=websocket on the page's URL forces one.
    const forced = new URLSearchParams(location.search).get("transport");
    this.transport = forced === "http" || forced === "websocket" ? forced : "auto";
    this.useBridge = this.transport === "http";
    /** "websocket" or "http": what the current connection uses. */
    this.transportUsed = null;
  }

  start() {
    this.stopped = false;
    this._open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "page closed");
  }

  /** One request; resolves with the payload, rejects with a GatewayError. `timeoutMs`:
   * how long to wait for the reply (default 30 s; e.g. a node.invoke may take longer). */
  call(method, params = {}, { timeoutMs } = {}) {
    return this._send(method, params, null, false, timeoutMs).first;
  }

  /** The `agent` method answers twice: {ack, final} promises. */
  agent(params) {
    const { first, second } = this._send("agent", params, true);
    return { ack: first, final: second };
  }

  _send(method, params, twoReplies, beforeReady = false, timeoutMs = REQUEST_TIMEOUT_MS) {
    const id = `${this.nextId++}:${randomId().slice(0, 8)}`;
    let first;
    let second = null;
    const entry = { method, replies: 0, timer: null };
    first = new Promise((resolve, reject) => Object.assign(entry, { resolve, reject }));
    if (twoReplies) {
      second = new Promise((resolve, reject) => {
        entry.resolveFinal = resolve;
        entry.rejectFinal = reject;
      });
      second.catch(() => {}); // a caller that only awaits the ack must not see an unhandled rejection
    }
    if (!(this.ready || (beforeReady && this.ws))) {
      const error = new GatewayError("UNAVAILABLE", "not connected to the gateway");
      entry.reject(error);
      if (entry.rejectFinal) entry.rejectFinal(error);
      return { first, second };
    }
    entry.timer = setTimeout(() => {
      if (entry.replies === 0) this._settle(id, new GatewayError("UNAVAILABLE", `${method}: no reply`));
    }, timeoutMs);
    this.pending.set(id, entry);
    this.ws.send(JSON.stringify({ type: "req", id, method, params }));
    return { first, second };
  }

  _settle(id, error) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    if (entry.replies === 0) entry.reject(error);
    if (entry.rejectFinal) entry.rejectFinal(error);
  }

  _open() {
    clearTimeout(this.timer);
    this.onState(this.everReady ? "reconnecting" : "connecting", { inMs: 0, attempt: this.attempt });
    let ws;
    const bridge = this.useBridge;
    try {
      ws = bridge ? new BridgeSocket() : new WebSocket(this.url);
    } catch (error) {
      this._scheduleReconnect(String(error));
      return;
    }
    this.ws = ws;
    let refused = null;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.transportUsed = bridge ? "http" : "websocket";
    };
    ws.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.type === "event" && frame.event === "connect.challenge") {
        this._hello(ws).catch((error) => {
          refused = error;
        });
      } else if (frame.type === "res") {
        this._response(frame);
      } else if (frame.type === "event") {
        this.onEvent(frame.event, frame.payload, frame);
      }
    };
    ws.onclose = (close) => {
      if (this.ws !== ws) return;
      if (!opened && this.transport === "auto") {
        // a WebSocket that never opened: try the bridge at once; a bridge that never
        // opened either: back to WebSocket first on the next attempt
        this.useBridge = !bridge;
        if (!bridge) {
          this.ws = null;
          this._open();
          return;
        }
      }
      const wasReady = this.ready;
      this.ready = false;
      this.ws = null;
      for (const id of [...this.pending.keys()]) {
        this._settle(id, new GatewayError("UNAVAILABLE", "connection to the gateway lost"));
      }
      if (this.stopped) return;
      if (refused && refused.code === "UNAUTHORIZED") {
        this.onState("unauthorized", { message: refused.message });
        return;
      }
      const reason = refused ? refused.message : close.reason || `closed (${close.code})`;
      if (wasReady) this.attempt = 0;
      this._scheduleReconnect(reason);
    };
  }

  async _hello(ws) {
    const params = {
      minProtocol: PROTOCOL.min,
      maxProtocol: PROTOCOL.max,
      client: {
        id: "webchat-ui",
        version: this.version,
        platform: (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || "web",
        mode: "ui",
        instanceId: this.instanceId,
        displayName: "Control UI",
      },
      role: "operator",
      userAgent: navigator.userAgent.slice(0, 500),
      locale: navigator.language,
    };
    const hello = await this._send("connect", params, null, true).first;
    if (this.ws !== ws) return;
    this.ready = true;
    const again = this.everReady;
    this.everReady = true;
    this.attempt = 0;
    this.onState("open", { hello });
    this.onReady(hello, again);
  }

  _response(frame) {
    const entry = this.pending.get(frame.id);
    if (!entry) return;
    const error = frame.ok ? null : new GatewayError(frame.error?.code, frame.error?.message, frame.error?.details);
    entry.replies += 1;
    if (entry.replies === 1) {
      clearTimeout(entry.timer);
      if (error) {
        entry.reject(error);
        if (entry.rejectFinal) entry.rejectFinal(error);
        this.pending.delete(frame.id);
        return;
      }
      entry.resolve(frame.payload);
      if (!entry.resolveFinal) this.pending.delete(frame.id);
      return;
    }
    this.pending.delete(frame.id);
    if (error) entry.rejectFinal(error);
    else entry.resolveFinal(frame.payload);
  }

  _scheduleReconnect(reason) {
    const base = Math.min(BACKOFF_MS.max, BACKOFF_MS.first * 2 ** this.attempt);
    const inMs = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.onState("reconnecting", { inMs, attempt: this.attempt, reason });
    this.timer = setTimeout(() => this._open(), inMs);
  }
}

/** Show the connection state in a page's banner element. */
export function connectionBanner(element, loginUrl) {
  let countdown = null;
  return (state, detail = {}) => {
    clearInterval(countdown);
    element.classList.remove("info");
    element.replaceChildren();
    if (state === "open") {
      element.hidden = true;
      return;
    }
    element.hidden = false;
    if (state === "connecting") {
      element.classList.add("info");
      element.textContent = "Connecting to the gateway…";
    } else if (state === "unauthorized") {
      element.append(`Not logged in to the gateway: ${detail.message}. `);
      const link = document.createElement("a");
      link.href = `${loginUrl}?next=${encodeURIComponent(location.pathname + location.search)}`;
      link.textContent = "Log in again";
      element.append(link);
    } else if (state === "reconnecting") {
      let left = Math.ceil((detail.inMs || 0) / 1000);
      const why = detail.reason ? ` (${detail.reason})` : "";
      const show = () => {
        element.textContent =
          left > 0
            ? `Connection to the gateway lost${why}. Reconnecting in ${left}s…`
            : `Connection to the gateway lost${why}. Reconnecting…`;
      };
      show();
      countdown = setInterval(() => {
        left -= 1;
        show();
        if (left <= 0) clearInterval(countdown);
      }, 1000);
    }
  };
}
