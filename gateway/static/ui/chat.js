// The chat page: sessions sidebar, streaming answers, tool steps, stop, working folder.
// Everything goes over the gateway WebSocket (gateway.js); the session key lives in the URL
// (?session=<key>) so a reload comes back to the same conversation.
import { answerView, appendOutcome, applyAgentEvent, endAnswer, renderAnswer, startAnswer } from "./answer.js";
import { GatewayClient, connectionBanner, readConfig } from "./gateway.js";
import { el, fatalBanner, renderSidebar, setUrlParam, sidebarDrawer, wireComposer } from "./page.js";

const config = readConfig();
const $ = (id) => document.getElementById(id);
const els = {
  banner: $("conn-banner"),
  sidebar: $("sidebar"),
  backdrop: $("sidebar-backdrop"),
  toggle: $("sidebar-toggle"),
  newSession: $("new-session"),
  newName: $("new-session-name"),
  picker: $("agent-picker"),
  list: $("session-list"),
  listEmpty: $("session-empty"),
  name: $("session-name"),
  agent: $("session-agent"),
  actions: $("session-actions"),
  rename: $("rename-session"),
  remove: $("delete-session"),
  folderForm: $("folder-form"),
  folderInput: $("folder-input"),
  folderError: $("folder-error"),
  messages: $("messages"),
  messagesEmpty: $("messages-empty"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send-button"),
  stop: $("stop-button"),
};

const EMPTY_NOTE = els.messagesEmpty.textContent;
const showFatal = fatalBanner(els.banner);
const closeDrawer = sidebarDrawer(els); // phone: the sessions drawer

const state = {
  key: new URLSearchParams(location.search).get("session"),
  current: null, // the open session (Session from the gateway)
  sessions: [],
  agents: [],
  views: new Map(), // runId → assistant message view
  running: new Set(), // runIds of the open session not yet ended
  connection: 0, // counts the connections booted (a reconnect is a new one)
  openedOn: -1, // the connection the open session was subscribed on
};

const client = new GatewayClient({
  path: config.wsPath || "/ws",
  version: config.version,
  onState: connectionBanner(els.banner, config.loginUrl),
  onReady: () => boot().catch(showFatal),
  onEvent,
});

// ---------------------------------------------------------------------------------------
// small DOM helpers (text only: user data never goes through innerHTML)
function pretty(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function scrollToEnd() {
  const box = els.messages;
  if (box.scrollHeight - box.scrollTop - box.clientHeight < 160) box.scrollTop = box.scrollHeight;
}

// ---------------------------------------------------------------------------------------
// start and reconnect: (re)load agents and sessions, re-subscribe, reload the history
async function boot() {
  const connection = ++state.connection;
  const [agents, sessions] = await Promise.all([
    client.call("agents.list"),
    client.call("sessions.list", { limit: 200 }),
  ]);
  state.agents = agents.agents;
  renderAgents();
  state.sessions = sessions.sessions;
  renderSessions();
  // Opened on this connection already (the user created or picked a session while the lists
  // loaded): opening it again would re-render its head from a reply that may predate what
  // the user did since, e.g. a working folder just typed or saved.
  if (state.key && state.openedOn !== connection) await openSession(state.key, { push: false });
  else if (!state.key) renderHead();
}

async function refreshSessions() {
  const { sessions } = await client.call("sessions.list", { limit: 200 });
  state.sessions = sessions;
  renderSessions();
}

function renderAgents() {
  const previous = els.picker.value;
  els.picker.replaceChildren();
  for (const agent of state.agents.filter((a) => a.enabled)) {
    const option = el("option", null, agent.name && agent.name !== agent.id ? `${agent.name} (${agent.id})` : agent.id);
    option.value = agent.id;
    if (previous ? agent.id === previous : agent.default) option.selected = true;
    els.picker.append(option);
  }
}

function renderSessions() {
  renderSidebar({
    list: els.list,
    empty: els.listEmpty,
    param: "session",
    dataKey: "sessionKey",
    current: state.key,
    entries: state.sessions.map((session) => ({
      key: session.sessionKey,
      name: session.name || "Untitled session",
      meta: `${session.agentId} · ${session.lastPreview || "no messages yet"}`,
    })),
    open: (key) => {
      closeDrawer();
      openSession(key, { push: true }).catch(showFatal);
    },
  });
}

// ---------------------------------------------------------------------------------------
// opening a session
async function openSession(key, { push }) {
  if (state.current && state.current.sessionKey !== key) {
    client.call("sessions.unsubscribe", { sessionKey: state.current.sessionKey }).catch(() => {});
  }
  state.key = key;
  state.openedOn = state.connection;
  setUrl(key, push);
  state.running.clear();
  setBusy();
  try {
    await client.call("sessions.subscribe", { sessionKey: key });
    state.current = await client.call("sessions.get", { sessionKey: key });
  } catch (error) {
    if (error.code !== "NOT_FOUND") throw error;
    state.current = null;
    state.key = null;
    setUrl(null, false);
    renderHead();
    clearMessages(`That session no longer exists (${error.message}).`);
    renderSessions();
    return;
  }
  renderHead();
  renderSessions();
  await loadHistory();
}

function setUrl(key, push) {
  setUrlParam("session", key, push);
}

window.addEventListener("popstate", () => {
  const key = new URLSearchParams(location.search).get("session");
  if (key) openSession(key, { push: false }).catch(showFatal);
  else {
    state.key = null;
    state.current = null;
    renderHead();
    clearMessages();
    renderSessions();
  }
});

function renderHead() {
  const session = state.current;
  els.actions.hidden = !session;
  els.folderForm.hidden = !session;
  els.folderError.hidden = true;
  if (!session) {
    els.name.textContent = "New chat";
    els.agent.textContent = "";
    return;
  }
  els.name.textContent = session.name || "Untitled session";
  els.agent.textContent = `agent: ${session.agentId}`;
  // Only a different session or a different saved folder replaces the field: a re-render
  // (a rename, a reply) must not throw away a folder being typed.
  const saved = `${session.sessionKey}\n${session.workingFolder || ""}`;
  if (els.folderInput.dataset.saved !== saved) {
    els.folderInput.dataset.saved = saved;
    els.folderInput.value = session.workingFolder || "";
  }
  els.folderInput.placeholder = `default: outputs/${session.agentId}/`;
  document.title = `${session.name || "Chat"} · Wingman Control UI`;
}

function clearMessages(note) {
  state.views.clear();
  els.messages.replaceChildren(els.messagesEmpty);
  els.messagesEmpty.hidden = false;
  els.messagesEmpty.textContent = note || EMPTY_NOTE;
}

async function loadHistory() {
  const key = state.key;
  const { messages } = await client.call("chat.history", { sessionKey: key });
  if (key !== state.key) return;
  clearMessages();
  els.messagesEmpty.hidden = messages.length > 0;
  for (const message of messages) {
    if (message.role === "user") addUserMessage(message.content);
    else if (message.role === "assistant") {
      const view = runView(message.runId || `history-${message.position}`);
      view.fromHistory = true;
      view.node.dataset.state = "history";
      view.text = message.content;
      renderAnswer(view);
    } else els.messages.append(el("p", "msg msg-system", message.content));
  }
  els.messages.scrollTop = els.messages.scrollHeight;
}

// ---------------------------------------------------------------------------------------
// messages and runs
function addUserMessage(text) {
  els.messagesEmpty.hidden = true;
  const node = el("div", "msg msg-user", text);
  els.messages.append(node);
  scrollToEnd();
  return node;
}

function runView(runId) {
  let view = state.views.get(runId);
  if (view) return view;
  els.messagesEmpty.hidden = true;
  const steps = el("div", "steps");
  view = answerView(runId, { scroll: scrollToEnd, steps, tools: [] });
  view.node.prepend(steps);
  els.messages.append(view.node);
  state.views.set(runId, view);
  return view;
}

function startRun(runId) {
  const view = startAnswer(runView(runId));
  if (!view.ended) {
    state.running.add(runId);
    setBusy();
  }
  return view;
}

function endRun(view, outcome) {
  if (!endAnswer(view, outcome)) return;
  scrollToEnd();
  for (const step of view.tools) if (!step.done) markTool(step, null, "(no result)");
  appendOutcome(view, outcome);
  state.running.delete(view.runId);
  setBusy();
  scrollToEnd();
  refreshSessions().catch(() => {});
}

function toolStart(view, payload) {
  const details = el("details", "tool");
  const summary = el("summary", null, `Tool ${payload.toolName} (running…)`);
  details.append(summary, el("div", "tool-label", "input"), el("pre", "tool-input", pretty(payload.toolInput)));
  view.steps.append(details);
  view.tools.push({ name: payload.toolName, details, summary, done: false });
  scrollToEnd();
}

function toolEnd(view, payload) {
  const step = view.tools.find((s) => !s.done && s.name === payload.toolName);
  if (step) markTool(step, payload.toolName, pretty(payload.toolOutput));
}

function markTool(step, name, output) {
  step.done = true;
  step.summary.textContent = `Tool ${name || step.name}`;
  step.details.append(el("div", "tool-label", "output"), el("pre", "tool-output", output));
}

function onEvent(event, payload) {
  if (event === "session.message") {
    if (payload.sessionKey === state.key && payload.message) addUserMessage(payload.message.content);
    return;
  }
  if (event !== "agent" || !payload) return;
  if (payload.sessionKey !== state.key) {
    if (["agent-complete", "agent-error", "agent-cancelled"].includes(payload.type)) {
      refreshSessions().catch(() => {});
    }
    return;
  }
  const view = startRun(payload.runId);
  if (applyAgentEvent(view, payload, endRun)) return;
  if (payload.type === "tool-start") toolStart(view, payload);
  else if (payload.type === "tool-end") toolEnd(view, payload);
}

function setBusy() {
  const busy = state.running.size > 0;
  els.stop.hidden = !busy;
  els.stop.disabled = false;
  els.composer.classList.toggle("busy", busy);
}

// ---------------------------------------------------------------------------------------
// actions
async function createSession(name, agentId) {
  const params = {};
  if (name) params.name = name;
  if (agentId) params.agentId = agentId;
  const session = await client.call("sessions.create", params);
  state.sessions.unshift(session);
  await openSession(session.sessionKey, { push: true });
  return session;
}

els.newSession.addEventListener("submit", async (event) => {
  event.preventDefault();
  const focused = document.activeElement;
  try {
    await createSession(els.newName.value.trim(), els.picker.value);
    els.newName.value = "";
    closeDrawer();
    // To the composer, unless the user went to another field while the history loaded (the
    // session's head shows before it): focus taken from there sent their typing elsewhere.
    const now = document.activeElement;
    if (now === focused || now === document.body || now === null) els.input.focus();
  } catch (error) {
    window.alert(`Could not create the session: ${error.message}`);
  }
});

async function send() {
  const text = els.input.value.trim();
  if (!text) return;
  if (!client.ready) {
    showFatal(new Error("not connected to the gateway; the message was not sent"));
    return;
  }
  els.input.value = "";
  try {
    if (!state.current) await createSession(text.slice(0, 40), els.picker.value);
  } catch (error) {
    els.input.value = text;
    window.alert(`Could not create a session: ${error.message}`);
    return;
  }
  const sessionKey = state.key;
  addUserMessage(text);
  const idempotencyKey = `ui-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  const { ack, final } = client.agent({ message: text, sessionKey, idempotencyKey });
  let runId = null;
  try {
    const accepted = await ack;
    runId = accepted.runId;
    if (sessionKey === state.key) startRun(runId);
  } catch (error) {
    const note = el("div", "run-error", `Not sent: ${error.message}`);
    els.messages.append(note);
    return;
  }
  final.then(
    (result) => {
      const view = state.views.get(runId);
      if (!view || view.ended || sessionKey !== state.key) return;
      // normally the terminal agent event got here first; this covers a missed one
      if (result.status === "ok") endRun(view, { text: result.result ? result.result.text : undefined });
      else if (result.status === "cancelled") endRun(view, { note: "Stopped." });
      else endRun(view, { error: `Agent error: ${result.error ? result.error.message : result.summary}` });
    },
    (error) => {
      const view = state.views.get(runId);
      if (!view || view.ended) return;
      endRun(view, { error: `${error.message}. The answer will be in the history once reconnected.` });
    },
  );
}

wireComposer(els.composer, els.input, send, showFatal);

els.stop.addEventListener("click", async () => {
  if (!state.key) return;
  els.stop.disabled = true;
  try {
    const { aborted } = await client.call("chat.abort", { sessionKey: state.key });
    if (aborted.length === 0) {
      // nothing was running any more: whatever we still show as running has ended
      for (const runId of [...state.running]) {
        const view = state.views.get(runId);
        if (view) endRun(view, {});
      }
    }
  } catch (error) {
    window.alert(`Could not stop the run: ${error.message}`);
  } finally {
    els.stop.disabled = false;
  }
});

els.rename.addEventListener("click", async () => {
  const session = state.current;
  if (!session) return;
  const name = window.prompt("New name for this session", session.name || "");
  if (name === null) return;
  try {
    state.current = await client.call("sessions.rename", { sessionKey: session.sessionKey, name });
    renderHead();
    await refreshSessions();
  } catch (error) {
    window.alert(`Could not rename: ${error.message}`);
  }
});

els.remove.addEventListener("click", async () => {
  const session = state.current;
  if (!session) return;
  const label = session.name || "Untitled session";
  if (!window.confirm(`Delete the session "${label}" and all its messages?`)) return;
  try {
    await client.call("sessions.delete", { sessionKey: session.sessionKey });
  } catch (error) {
    window.alert(`Could not delete: ${error.message}`);
    return;
  }
  state.current = null;
  state.key = null;
  state.running.clear();
  setBusy();
  setUrl(null, true);
  renderHead();
  clearMessages("Session deleted.");
  await refreshSessions();
});

els.folderForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const session = state.current;
  if (!session) return;
  els.folderError.hidden = true;
  try {
    state.current = await client.call("sessions.setFolder", {
      sessionKey: session.sessionKey,
      workingFolder: els.folderInput.value.trim(),
    });
    renderHead();
    els.folderInput.value = state.current.workingFolder || ""; // as the gateway resolved it
  } catch (error) {
    els.folderError.textContent = error.message;
    els.folderError.hidden = false;
  }
});

client.start();
