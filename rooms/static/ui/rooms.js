// The rooms page: create a room of agents, broadcast a message to it and watch every member
// agent's answer stream in its own column. The page's connection joins the open room
// (rooms.join) as a live member, so it gets the room's `agent`, `room.message` and
// `room.member` events; the room id lives in the URL (?room=<id>).
import { answerView as newAnswerView, appendOutcome, applyAgentEvent, endAnswer, startAnswer } from "./answer.js";
import { GatewayClient, connectionBanner, readConfig } from "./gateway.js";
import { el, fatalBanner, renderSidebar, setUrlParam, sidebarDrawer, wireComposer } from "./page.js";

const config = readConfig();
const $ = (id) => document.getElementById(id);
const els = {
  banner: $("conn-banner"),
  sidebar: $("sidebar"),
  backdrop: $("sidebar-backdrop"),
  toggle: $("sidebar-toggle"),
  newRoom: $("new-room"),
  newName: $("new-room-name"),
  newDescription: $("new-room-description"),
  newStrategy: $("new-room-strategy"),
  newAgents: $("new-room-agents"),
  newError: $("new-room-error"),
  list: $("room-list"),
  listEmpty: $("room-empty"),
  name: $("room-name"),
  strategy: $("room-strategy"),
  actions: $("room-actions"),
  remove: $("delete-room"),
  live: $("live-members"),
  liveList: $("live-member-list"),
  columns: $("room-columns"),
  columnsEmpty: $("columns-empty"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send-button"),
};
const TERMINAL = ["agent-complete", "agent-error", "agent-cancelled"];
const showFatal = fatalBanner(els.banner);
const closeDrawer = sidebarDrawer(els); // phone: the rooms drawer

const state = {
  roomId: new URLSearchParams(location.search).get("room"),
  room: null,
  rooms: [],
  agents: [],
  columns: new Map(), // agentId → column view
  views: new Map(), // runId → answer view
};

const client = new GatewayClient({
  path: config.wsPath || "/ws",
  version: config.version,
  onState: connectionBanner(els.banner, config.loginUrl),
  onReady: () => boot().catch(showFatal),
  onEvent,
});

// ---------------------------------------------------------------------------------------
// helpers (text only: user data never goes through innerHTML)
function roomSessionKey(agentId, roomId) {
  return `agent:${agentId}:room:${roomId}`;
}

function agentLabel(agentId) {
  const agent = state.agents.find((a) => a.id === agentId);
  return agent && agent.name && agent.name !== agent.id ? `${agent.name} (${agent.id})` : agentId;
}

// ---------------------------------------------------------------------------------------
// start and reconnect
async function boot() {
  const [agents, rooms] = await Promise.all([client.call("agents.list"), client.call("rooms.list")]);
  state.agents = agents.agents;
  state.rooms = rooms.rooms;
  renderAgentChoices();
  renderRooms();
  if (state.roomId) await openRoom(state.roomId, { push: false });
  else renderHead();
}

async function refreshRooms() {
  state.rooms = (await client.call("rooms.list")).rooms;
  renderRooms();
}

function renderAgentChoices() {
  const checked = new Set([...els.newAgents.querySelectorAll("input:checked")].map((i) => i.value));
  els.newAgents.replaceChildren();
  for (const agent of state.agents.filter((a) => a.enabled)) {
    const label = el("label", "agent-choice");
    const box = el("input");
    box.type = "checkbox";
    box.name = "agents";
    box.value = agent.id;
    box.checked = checked.has(agent.id);
    label.append(box, ` ${agentLabel(agent.id)}`);
    els.newAgents.append(label);
  }
}

function renderRooms() {
  renderSidebar({
    list: els.list,
    empty: els.listEmpty,
    param: "room",
    dataKey: "roomId",
    current: state.roomId,
    entries: state.rooms.map((room) => ({
      key: room.id,
      name: room.name,
      meta: `${room.strategy} · ${room.agents.join(", ") || "no agents"}`,
    })),
    open: (roomId) => {
      closeDrawer();
      openRoom(roomId, { push: true }).catch(showFatal);
    },
  });
}

// ---------------------------------------------------------------------------------------
// opening a room: leave the previous one, join this one, draw its columns and history
async function openRoom(roomId, { push }) {
  if (state.room && state.room.id !== roomId) {
    client.call("rooms.leave", { roomId: state.room.id }).catch(() => {});
  }
  state.roomId = roomId;
  setUrl(roomId, push);
  let room;
  try {
    room = await client.call("rooms.join", { roomId });
  } catch (error) {
    if (error.code !== "NOT_FOUND") throw error;
    state.room = null;
    state.roomId = null;
    setUrl(null, false);
    renderHead();
    clearColumns("That room does not exist (any more).");
    return;
  }
  state.room = room;
  state.roomId = room.id; // the URL may have named the room
  setUrl(room.id, false);
  renderRooms();
  renderHead();
  buildColumns();
  await Promise.all([loadMembers(), loadHistory()]);
}

function setUrl(roomId, push) {
  setUrlParam("room", roomId, push);
}

window.addEventListener("popstate", () => {
  const roomId = new URLSearchParams(location.search).get("room");
  if (roomId) openRoom(roomId, { push: false }).catch(showFatal);
});

function renderHead() {
  const room = state.room;
  els.name.textContent = room ? room.name : "Rooms";
  els.strategy.textContent = room ? `${room.strategy} · ${room.agents.length} agent(s)` : "";
  els.actions.hidden = !room;
  els.composer.hidden = !room;
  els.live.hidden = !room;
  document.title = `${room ? room.name : "Rooms"} · Wingman Control UI`;
}

function clearColumns(note) {
  state.columns.clear();
  state.views.clear();
  els.columns.replaceChildren();
  els.columnsEmpty.textContent = note;
  els.columnsEmpty.hidden = false;
}

function buildColumns() {
  clearColumns(state.room.agents.length ? "" : "This room has no member agents.");
  els.columnsEmpty.hidden = state.room.agents.length > 0;
  for (const agentId of state.room.agents) column(agentId);
}

function column(agentId) {
  let view = state.columns.get(agentId);
  if (view) return view;
  const node = el("section", "room-column");
  node.dataset.agentId = agentId;
  const head = el("header", "room-column-head");
  head.append(el("h2", null, agentLabel(agentId)));
  const link = el("a", "continue-link", "Continue in chat");
  const key = roomSessionKey(agentId, state.room.id);
  link.href = `${config.chatUrl}?session=${encodeURIComponent(key)}`;
  link.title = `Open the session ${key} in the chat`;
  head.append(link);
  const body = el("div", "room-column-body");
  node.append(head, body);
  els.columns.append(node);
  view = { agentId, node, body, link };
  state.columns.set(agentId, view);
  return view;
}

function scrollToEnd(body) {
  if (body.scrollHeight - body.scrollTop - body.clientHeight < 160) body.scrollTop = body.scrollHeight;
}

// ---------------------------------------------------------------------------------------
// members and history
async function loadMembers() {
  const roomId = state.room.id;
  const members = await client.call("rooms.members", { roomId });
  if (roomId === state.roomId) renderLive(members.live || []);
}

function renderLive(live) {
  els.liveList.replaceChildren();
  if (live.length === 0) els.liveList.append(el("li", "muted", "none"));
  for (const member of live) {
    const item = el("li", "live-member", member.name || member.id || member.connId);
    item.dataset.kind = member.kind;
    if (member.kind === "node") item.append(el("span", "member-kind", " (node)"));
    item.title = [member.kind, member.id, member.connId].filter(Boolean).join(" · ");
    els.liveList.append(item);
  }
}

async function loadHistory() {
  const roomId = state.room.id;
  const { messages } = await client.call("rooms.history", { roomId, limit: 200 });
  if (roomId !== state.roomId) return;
  for (const message of messages) {
    if (message.agentId && message.runId) {
      const view = answerView(message.runId, message.agentId);
      view.fromHistory = true;
      if (message.status === "ok") endRun(view, { text: message.content || "" });
      else endRun(view, { error: `Agent ${message.status}: ${message.content}` });
    } else if (!message.agentId) {
      addPrompt(message.content, senderName(message.from));
    }
  }
}

function senderName(from) {
  return from ? `${from.kind} ${from.name || from.id}` : null;
}

function addPrompt(text, from) {
  els.columnsEmpty.hidden = true;
  for (const view of state.columns.values()) {
    const node = el("div", "msg msg-user", text);
    if (from) node.title = `from ${from}`;
    view.body.append(node);
    scrollToEnd(view.body);
  }
}

// ---------------------------------------------------------------------------------------
// answers: one streaming view per run, in its agent's column
function answerView(runId, agentId) {
  let view = state.views.get(runId);
  if (view) return view;
  const col = column(agentId);
  view = newAnswerView(runId, { scroll: () => scrollToEnd(col.body), agentId, col });
  col.body.append(view.node);
  state.views.set(runId, view);
  return view;
}

function startRun(runId, agentId) {
  return startAnswer(answerView(runId, agentId));
}

function endRun(view, outcome) {
  if (!endAnswer(view, outcome)) return;
  appendOutcome(view, outcome);
  view.scroll();
}

function inOpenRoom(payload) {
  if (!state.room || !payload) return false;
  if (payload.roomId) return payload.roomId === state.room.id;
  return typeof payload.sessionKey === "string" && payload.sessionKey.endsWith(`:room:${state.room.id}`);
}

function onEvent(event, payload) {
  if (event === "room.member") {
    if (inOpenRoom(payload)) loadMembers().catch(() => {});
    return;
  }
  if (event === "room.message") {
    // another member's message (our own is never sent back); answers arrive as `agent`
    if (inOpenRoom(payload) && !payload.agentId) addPrompt(payload.content, senderName(payload.from));
    return;
  }
  if (event !== "agent" || !inOpenRoom(payload) || !payload.agentId) return;
  const view = startRun(payload.runId, payload.agentId);
  applyAgentEvent(view, payload, endRun);
}

// ---------------------------------------------------------------------------------------
// actions
els.newRoom.addEventListener("submit", async (event) => {
  event.preventDefault();
  els.newError.hidden = true;
  const agents = [...els.newAgents.querySelectorAll("input:checked")].map((i) => i.value);
  const params = {
    name: els.newName.value.trim(),
    description: els.newDescription.value.trim(),
    strategy: els.newStrategy.value,
    agents,
  };
  let room;
  try {
    room = await client.call("rooms.create", params);
  } catch (error) {
    els.newError.textContent = `Could not create the room: ${error.message}`;
    els.newError.hidden = false;
    return;
  }
  els.newName.value = "";
  els.newDescription.value = "";
  await refreshRooms();
  closeDrawer();
  await openRoom(room.id, { push: true });
  els.input.focus();
});

async function send() {
  const text = els.input.value.trim();
  if (!text || !state.room) return;
  if (!client.ready) {
    showFatal(new Error("not connected to the gateway; the message was not sent"));
    return;
  }
  els.input.value = "";
  const roomId = state.room.id;
  addPrompt(text, null);
  let answer;
  try {
    answer = await client.call("rooms.broadcast", { roomId, message: text });
  } catch (error) {
    els.input.value = text;
    for (const view of state.columns.values()) view.body.append(el("div", "run-error", `Not sent: ${error.message}`));
    return;
  }
  if (roomId !== state.roomId) return;
  for (const run of answer.runs) {
    const view = startRun(run.runId, run.agentId);
    if (run.sessionKey) view.col.link.href = `${config.chatUrl}?session=${encodeURIComponent(run.sessionKey)}`;
  }
}

wireComposer(els.composer, els.input, send, showFatal);

els.remove.addEventListener("click", async () => {
  const room = state.room;
  if (!room) return;
  if (!window.confirm(`Delete the room "${room.name}" and its history?`)) return;
  try {
    await client.call("rooms.delete", { roomId: room.id });
  } catch (error) {
    window.alert(`Could not delete: ${error.message}`);
    return;
  }
  state.room = null;
  state.roomId = null;
  setUrl(null, true);
  renderHead();
  clearColumns("Room deleted.");
  await refreshRooms();
});

client.start();
