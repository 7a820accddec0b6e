// The Nodes page: pending node pairing requests (approve / reject), paired nodes with their
// live status, approved commands and host stats, and a form that runs a command on a node
// (node.invoke). Kept current by `presence` (a node connecting or leaving, on any gateway
// process), `node.pair.requested` / `node.pair.resolved`, and a re-read every few seconds
// (host stats arrive from the node without an event).
import {
  $, action, cell, codeList, el, fillTable, livePage, nameWithId, pill, showError, timeOf,
} from "./pairing.js";

const REFRESH_MS = 5000;
const INVOKE_GRACE_MS = 5000; // the gateway answers TIMEOUT itself; wait a little longer
const ADMIN_COMMANDS = new Set(["system.run", "system.run.prepare"]);
const els = {
  pending: $("node-pending"),
  pendingEmpty: $("node-pending-empty"),
  nodes: $("nodes"),
  nodesEmpty: $("nodes-empty"),
  form: $("invoke-form"),
  node: $("invoke-node"),
  command: $("invoke-command"),
  params: $("invoke-params"),
  timeout: $("invoke-timeout"),
  button: $("invoke-button"),
  error: $("invoke-error"),
  result: $("invoke-result"),
};
const state = {
  pending: [],
  nodes: [],
  online: new Map(), // connId → nodeId of every connected node (presence, all processes)
  left: new Map(), // nodeId → when this page saw it disconnect (the server keeps connect times)
};

function isOnline(nodeId) {
  return [...state.online.values()].includes(nodeId);
}

function setPresence(entries) {
  state.online.clear();
  for (const entry of entries) {
    if (entry.role === "node" && entry.deviceId) state.online.set(entry.connId, entry.deviceId);
  }
}

// ---------------------------------------------------------------------------------------
// rendering
function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

/** The node host's `node.host.stats` as short lines (unknown fields as they came). */
function statsLines(stats) {
  const lines = [];
  const known = new Set(["ts"]);
  const both = (a, b) => a in stats && b in stats && known.add(a).add(b);
  if ("cpuCount" in stats && known.add("cpuCount")) lines.push(`${stats.cpuCount} CPUs`);
  if (Array.isArray(stats.loadAverage) && known.add("loadAverage")) {
    lines.push(`load ${stats.loadAverage.map((x) => Number(x).toFixed(2)).join(" ")}`);
  }
  if (both("memoryFreeBytes", "memoryTotalBytes")) {
    lines.push(`memory ${bytes(stats.memoryFreeBytes)} free of ${bytes(stats.memoryTotalBytes)}`);
  }
  if (both("diskAvailableBytes", "diskTotalBytes")) {
    lines.push(`disk ${bytes(stats.diskAvailableBytes)} free of ${bytes(stats.diskTotalBytes)}`);
  }
  for (const [key, value] of Object.entries(stats)) {
    if (!known.has(key)) lines.push(`${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`);
  }
  return lines;
}

function hostCell(node) {
  const box = el("div", "host-stats");
  const stats = node.hostStats;
  if (!stats) return cell(el("span", "muted", "no stats yet"));
  for (const line of statsLines(stats)) box.append(el("div", "", line));
  const asOf = el("small", "", "as of ");
  asOf.append(timeOf(stats.ts));
  box.append(asOf);
  return cell(box);
}

function statusCell(node) {
  const online = isOnline(node.nodeId);
  const td = cell(pill(online ? "connected" : "offline", !online), el("br"));
  const left = state.left.get(node.nodeId);
  let note;
  if (online) {
    note = el("small", "", "connected since ");
    note.append(timeOf(node.connectedAtMs || node.lastConnectedAtMs));
  } else {
    note = el("small", "", left ? "last seen " : "last connected ");
    note.append(timeOf(left || node.lastConnectedAtMs));
  }
  td.append(note);
  if (node.approvalState === "pending-reapproval") td.append(el("br"), pill("new commands await approval", true));
  return td;
}

function nodeRow(node) {
  const tr = el("tr");
  tr.dataset.node = node.nodeId;
  tr.dataset.connected = String(isOnline(node.nodeId));
  const who = nameWithId(node.displayName, node.nodeId);
  if (node.platform) who.append(el("br"), el("small", "", `${node.platform} ${node.version || ""}`.trim()));
  const remove = action("Remove", () => client.call("node.pair.remove", { nodeId: node.nodeId }), {
    question: `Remove node ${node.displayName || node.nodeId}? It can run nothing until approved again.`,
    danger: true,
    after: reload,
  });
  const rename = action("Rename", (name) => client.call("node.rename", { nodeId: node.nodeId, displayName: name }), {
    ask: "New name for the node (agents may use it in node tools)",
    value: node.displayName,
    name: "node.rename",
    after: reload,
  });
  const actions = cell(rename, " ", remove);
  tr.append(cell(who), statusCell(node), cell(codeList(node.commands || [])), hostCell(node), actions);
  return tr;
}

function pendingRow(request) {
  const tr = el("tr");
  tr.dataset.request = request.requestId;
  tr.dataset.node = request.nodeId;
  const commands = codeList(request.commands);
  if (request.commands.some((c) => ADMIN_COMMANDS.has(c))) commands.append(pill("runs programs", true));
  const decide = (method, label, question) =>
    action(label, () => client.call(method, { requestId: request.requestId }), {
      question,
      danger: method === "node.pair.reject",
      name: method,
      after: reload,
    });
  tr.append(
    cell(nameWithId(request.displayName, request.nodeId)),
    cell(`${request.platform || "—"} ${request.version || ""}`.trim()),
    cell(request.remoteIp || "—"),
    cell(commands),
    cell(timeOf(request.ts)),
    cell(
      decide("node.pair.approve", "Approve"),
      " ",
      decide("node.pair.reject", "Reject", `Reject ${request.displayName || request.nodeId}?`),
    ),
  );
  return tr;
}

function option(value, text) {
  const node = el("option", "", text);
  node.value = value;
  return node;
}

/** The invoke form offers connected paired nodes and the chosen node's approved commands. */
function renderInvokeChoices() {
  const chosen = els.node.value;
  const usable = state.nodes.filter((n) => n.paired && isOnline(n.nodeId) && (n.commands || []).length);
  els.node.replaceChildren(...usable.map((n) => option(n.nodeId, `${n.displayName || n.nodeId} (${n.nodeId.slice(0, 8)}…)`)));
  if (usable.some((n) => n.nodeId === chosen)) els.node.value = chosen;
  const node = usable.find((n) => n.nodeId === els.node.value);
  const command = els.command.value;
  els.command.replaceChildren(...(node ? node.commands : []).map((c) => option(c, c)));
  if (node && node.commands.includes(command)) els.command.value = command;
  els.button.disabled = !node;
  if (!node) els.node.append(option("", "no connected node with approved commands"));
}

let shown = null; // what the tables show: unchanged data is not re-rendered under the pointer

function render() {
  const now = JSON.stringify([state.pending, state.nodes, [...state.online], [...state.left]]);
  if (now === shown) return;
  shown = now;
  fillTable(els.pending, els.pendingEmpty, state.pending.map(pendingRow));
  fillTable(els.nodes, els.nodesEmpty, state.nodes.filter((n) => n.paired).map(nodeRow));
  renderInvokeChoices();
}

// ---------------------------------------------------------------------------------------
// loading and events
async function load() {
  const [pairs, list, presence] = await Promise.all([
    client.call("node.pair.list"),
    client.call("node.list"),
    client.call("system-presence"),
  ]);
  state.pending = pairs.pending;
  state.nodes = list.nodes;
  setPresence(presence.presence);
  render();
}

function onEvent(event, payload, again) {
  if (event === "presence") {
    const nodes = (payload.entries || []).filter((e) => e.role === "node" && e.deviceId);
    if (!nodes.length) return;
    for (const entry of nodes) {
      if (entry.reason === "disconnect") {
        state.online.delete(entry.connId);
        state.left.set(entry.deviceId, entry.ts);
      } else {
        state.online.set(entry.connId, entry.deviceId);
      }
    }
    render(); // the status changes at once; the reload brings the rest
    again();
  } else if (event === "node.pair.requested" || event === "node.pair.resolved") {
    again();
  }
}

// ---------------------------------------------------------------------------------------
// invoke
function readParams() {
  const text = els.params.value.trim() || "{}";
  let params;
  try {
    params = JSON.parse(text);
  } catch (error) {
    throw new Error(`Params are not valid JSON: ${error.message}`);
  }
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    throw new Error("Params must be a JSON object, e.g. {\"bins\": [\"git\"]}");
  }
  return params;
}

async function invoke(event) {
  event.preventDefault();
  showError(els.error, null);
  els.result.hidden = true;
  let params;
  try {
    params = readParams();
  } catch (error) {
    showError(els.error, error);
    return;
  }
  const timeoutMs = Number(els.timeout.value) || 30000;
  const request = {
    nodeId: els.node.value,
    command: els.command.value,
    params,
    timeoutMs,
    idempotencyKey: `ui-${Date.now()}-${Math.random().toString(16).slice(2)}`,
  };
  els.button.disabled = true;
  els.button.textContent = "Running…";
  try {
    const started = performance.now();
    const result = await client.call("node.invoke", request, { timeoutMs: timeoutMs + INVOKE_GRACE_MS });
    const took = Math.round(performance.now() - started);
    els.result.textContent = `${request.command} on ${request.nodeId.slice(0, 8)}… answered in ${took} ms:\n`
      + JSON.stringify(result.payload ?? null, null, 2);
    els.result.hidden = false;
  } catch (error) {
    showError(els.error, error);
  } finally {
    els.button.textContent = "Invoke";
    renderInvokeChoices();
  }
}

els.form.addEventListener("submit", invoke);
els.node.addEventListener("change", renderInvokeChoices);
const { client, reload } = livePage({
  events: ["node.pair.requested", "node.pair.resolved"],
  load,
  onEvent,
  refreshMs: REFRESH_MS,
});
