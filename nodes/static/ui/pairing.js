// Shared by the Nodes and Devices pages (ui/nodes.js, ui/devices.js): the page's gateway
// connection kept current by events, text-only DOM building (names, addresses and command
// output come from other machines: they never go through innerHTML), times, and row actions
// that ask first (confirm.js) and show the gateway's refusal.
import { confirmed } from "./confirm.js";
import { GatewayClient, connectionBanner, readConfig } from "./gateway.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

export function cell(...children) {
  const td = document.createElement("td");
  td.append(...children.filter((c) => c !== null && c !== undefined));
  return td;
}

/** A <time> for epoch milliseconds ("—" when unknown). */
export function timeOf(ms) {
  if (!ms) return el("span", "muted", "—");
  const when = new Date(ms);
  const node = el("time", "", when.toLocaleString());
  node.dateTime = when.toISOString();
  return node;
}

/** A name with its (shortened) id under it; the full id in the title. */
export function nameWithId(name, id) {
  const box = el("span", "name-id");
  box.append(el("strong", "", name || id));
  const code = el("code", "id", id.length > 16 ? `${id.slice(0, 12)}…` : id);
  code.title = id;
  box.append(el("br"), code);
  return box;
}

export function pill(text, off = false) {
  return el("span", off ? "pill pill-off" : "pill", text);
}

export function codeList(items) {
  const box = el("span", "code-list");
  if (!items.length) box.append(el("span", "muted", "none"));
  for (const item of items) box.append(el("code", "", item), " ");
  return box;
}

/** Show a GatewayError (or any error) in `target`; null hides it. */
export function showError(target, error) {
  target.hidden = !error;
  if (!error) return;
  target.textContent = error.code ? `${error.code}: ${error.message}` : String(error.message || error);
}

/** Fill a table's body; its "empty" note shows when there are no rows. */
export function fillTable(table, emptyNote, rows) {
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = rows.length === 0;
  emptyNote.hidden = rows.length > 0;
}

/**
 * A row's action: a small form (so confirm.js asks `question`, when given) whose submit
 * runs `run()` (with `ask`, `run(answer)` after a prompt showing `ask` and `value`; no
 * answer, no call); a refusal shows in the page's #action-error, success calls `after()`.
 */
export function action(label, run, { question, ask, value, danger = false, name, after } = {}) {
  const form = el("form", "row-action");
  if (question) form.dataset.confirm = question;
  const button = el("button", danger ? "small danger" : "small", label);
  button.type = "submit";
  if (name) button.name = name;
  form.append(button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!confirmed(form)) return;
    const answer = ask ? window.prompt(ask, value || "") : undefined;
    if (ask && !(answer || "").trim()) return;
    button.disabled = true;
    try {
      await run(ask ? answer.trim() : undefined);
      showError($("action-error"), null);
      if (after) after();
    } catch (error) {
      showError($("action-error"), error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** Runs `load` now and again after changes, never two at once (one more if asked meanwhile). */
function reloader(load, onError) {
  let running = null;
  let again = false;
  const reload = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await load();
        } catch (error) {
          onError(error);
        }
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  };
  return reload;
}

/**
 * Connect the page: after each hello-ok subscribe to `events` and `load()`; every event
 * (those and `presence`) goes to `onEvent(event, payload, reload)`; with `refreshMs` the
 * page also reloads on that interval while it is visible.
 */
export function livePage({ events, load, onEvent, refreshMs }) {
  const config = readConfig();
  const banner = $("conn-banner");
  const reload = reloader(load, (error) => showError($("action-error"), error));
  const client = new GatewayClient({
    path: config.wsPath || "/ws",
    version: config.version,
    onState: connectionBanner(banner, config.loginUrl),
    onReady: async () => {
      await client.call("subscribe", { events }).catch((error) => showError($("action-error"), error));
      await reload();
    },
    onEvent: (event, payload) => onEvent(event, payload, reload),
  });
  if (refreshMs) {
    setInterval(() => {
      if (client.ready && document.visibilityState === "visible") reload();
    }, refreshMs);
  }
  client.start();
  return { client, reload };
}
