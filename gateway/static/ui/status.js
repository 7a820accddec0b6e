// The status page: health, uptime, connections and presence, kept current by the gateway's
// presence events and a `status` call every few seconds.
import { GatewayClient, connectionBanner, readConfig } from "./gateway.js";

const REFRESH_MS = 3000;
const config = readConfig();
const $ = (id) => document.getElementById(id);
let uptime = null; // {ms, at}: uptime reported by the server and when we heard it
let timer = null;
const presence = new Map(); // connId → entry

function duration(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s}s`].filter(Boolean).join(" ");
}

function showHealth(health) {
  const tile = $("st-health");
  tile.textContent = health.status;
  tile.classList.toggle("ok", health.ok);
  $("st-connections").textContent = String(health.connections);
  $("st-messages").textContent = String(health.messagesProcessed);
  $("st-version").textContent = health.version;
  $("st-layer").textContent = health.channelLayer;
  uptime = { ms: health.uptimeMs, at: Date.now() };
  tickUptime();
  $("st-updated").textContent = new Date().toLocaleTimeString();
}

function tickUptime() {
  if (uptime) $("st-uptime").textContent = duration(uptime.ms + (Date.now() - uptime.at));
}

function showPresence() {
  const rows = $("presence-rows");
  rows.replaceChildren();
  $("st-presence-count").textContent = String(presence.size);
  const entries = [...presence.values()].sort((a, b) => a.connectedAt - b.connectedAt);
  for (const entry of entries) {
    const row = document.createElement("tr");
    row.dataset.connId = entry.connId;
    const who = entry.displayName || entry.clientId || entry.host;
    const cells = [
      who + (entry.instanceId === client.instanceId ? " (this page)" : ""),
      entry.mode || "—",
      entry.dialect,
      entry.ip || "—",
      new Date(entry.connectedAt).toLocaleString(),
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    rows.append(row);
  }
}

async function refresh() {
  const status = await client.call("status");
  showHealth(status.health);
}

async function reloadPresence() {
  const { presence: entries } = await client.call("system-presence");
  presence.clear();
  for (const entry of entries) presence.set(entry.connId, entry);
  showPresence();
}

const client = new GatewayClient({
  path: config.wsPath || "/ws",
  version: config.version,
  onState: connectionBanner($("conn-banner"), config.loginUrl),
  onReady: async (hello) => {
    showHealth(hello.snapshot.health);
    presence.clear();
    for (const entry of hello.snapshot.presence) presence.set(entry.connId, entry);
    showPresence();
    clearInterval(timer);
    timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
    await Promise.all([refresh(), reloadPresence()]).catch(() => {});
  },
  onEvent: (event, payload) => {
    if (event === "presence") {
      for (const entry of payload.entries || []) {
        if (entry.reason === "disconnect") presence.delete(entry.connId);
        else presence.set(entry.connId, entry);
      }
      showPresence();
      refresh().catch(() => {});
    } else if (event === "health") {
      showHealth(payload);
    }
  },
});

setInterval(tickUptime, 1000);
client.start();
