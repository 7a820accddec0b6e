// One agent run's answer as it streams, shared by the chat (chat.js) and the rooms page
// (rooms.js): deltas batched into one Markdown render per animation frame, the terminal
// event sets the final text and state. The page places the view's node and says how it
// scrolls (`scroll`); what else a run shows (tool steps, the stop button) stays in the page.
import { renderMarkdown } from "./markdown.js";
import { el } from "./page.js";

/** A new answer view: `<article class="msg msg-assistant">` holding the Markdown `md`. */
export function answerView(runId, { scroll, ...extra }) {
  const node = el("article", "msg msg-assistant");
  node.dataset.runId = runId;
  const md = el("div", "md");
  node.append(md);
  return { runId, node, md, scroll, text: "", ended: false, fromHistory: false, frame: 0, ...extra };
}

/** Mark the answer as running unless it has ended already. */
export function startAnswer(view) {
  if (!view.ended) {
    view.node.classList.add("streaming");
    view.node.dataset.state = "running";
  }
  return view;
}

export function renderAnswer(view) {
  renderMarkdown(view.md, view.text);
  view.scroll();
}

function scheduleRender(view) {
  if (view.frame) return;
  view.frame = requestAnimationFrame(() => {
    view.frame = 0;
    renderAnswer(view);
  });
}

/** Set the final text and state and render it (without scrolling); false if already ended. */
export function endAnswer(view, { text, error, note }) {
  if (view.ended) return false;
  view.ended = true;
  if (view.frame) cancelAnimationFrame(view.frame);
  view.frame = 0;
  if (typeof text === "string" && (text || !view.text)) view.text = text;
  view.node.classList.remove("streaming");
  view.node.dataset.state = error ? "error" : note ? "stopped" : "done";
  renderMarkdown(view.md, view.text);
  return true;
}

/** The error or the note an ended answer closes with. */
export function appendOutcome(view, { error, note }) {
  if (error) view.node.append(el("div", "run-error", error));
  if (note) view.node.append(el("p", "msg-note", note));
}

/** Apply an `agent` event's text and end to the view; `end(view, outcome)` is the page's
 * own ending. False for the other event types (tool steps), which the page handles. */
export function applyAgentEvent(view, payload, end) {
  switch (payload.type) {
    case "agent-stream":
      // an answer already loaded from the history is complete: no deltas on top of it
      if (payload.text && !view.fromHistory && !view.ended) {
        view.text += payload.text;
        scheduleRender(view);
      }
      return true;
    case "agent-complete":
      end(view, { text: payload.result ? payload.result.text : undefined });
      return true;
    case "agent-error":
      end(view, { error: `Agent error: ${payload.error}${payload.code ? ` (${payload.code})` : ""}` });
      return true;
    case "agent-cancelled":
      end(view, { text: payload.partialText || undefined, note: "Stopped." });
      return true;
    default:
      return false;
  }
}
