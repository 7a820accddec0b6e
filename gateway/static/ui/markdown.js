// Markdown → sanitized HTML: marked parses, DOMPurify removes anything that could run.
// Nothing else in the UI assigns innerHTML; every other user-provided string is textContent.
import { marked } from "./vendor/marked.esm.js";
import DOMPurify from "./vendor/purify.es.js";

marked.setOptions({ gfm: true, breaks: true });

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

export function renderMarkdown(element, text) {
  const html = marked.parse(text || "");
  element.innerHTML = DOMPurify.sanitize(html, { USE_PROFILES: { html: true } });
}
