// What the chat (chat.js) and the rooms page (rooms.js) share around their streams: the
// fatal-error banner, the sidebar list and the open item in the URL, the composer (Enter
// sends, Shift+Enter is a new line) and the phone drawer of the sidebar.

/** An element with a class and a text (text only: user data never goes through innerHTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** The function that shows an error which stopped the page in the connection `banner`. */
export function fatalBanner(banner) {
  return (error) => {
    banner.hidden = false;
    banner.textContent = `Error: ${error.message || error}`;
  };
}

/** Fill the sidebar `list` with a link per entry ({ key, name, meta }) to `?<param>=<key>`,
 * the `current` one marked, the key in the item's `data-<dataKey>`; a click calls
 * `open(key)` instead of loading the page. `empty` shows when there is no entry. */
export function renderSidebar({ list, empty, param, dataKey, current, entries, open }) {
  list.replaceChildren();
  empty.hidden = entries.length > 0;
  for (const entry of entries) {
    const item = el("li");
    item.dataset[dataKey] = entry.key;
    if (entry.key === current) item.setAttribute("aria-current", "true");
    const link = el("a");
    link.href = `?${param}=${encodeURIComponent(entry.key)}`;
    link.append(el("span", "s-name", entry.name), el("span", "s-meta", entry.meta));
    link.addEventListener("click", (event) => {
      event.preventDefault();
      open(entry.key);
    });
    item.append(link);
    list.append(item);
  }
}

/** Put `value` in the URL as the query parameter `name` (none: remove it); `push` adds a
 * history entry, otherwise the current one is replaced. Nothing when the URL stays the same. */
export function setUrlParam(name, value, push) {
  const url = new URL(location.href);
  if (value) url.searchParams.set(name, value);
  else url.searchParams.delete(name);
  if (url.href === location.href) return;
  if (push) history.pushState({ [name]: value }, "", url);
  else history.replaceState({ [name]: value }, "", url);
}

/** Submitting the composer form, or Enter in its input, calls `send`; `onError` gets a failure. */
export function wireComposer(form, input, send, onError) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send().catch(onError);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send().catch(onError);
    }
  });
}

/** The phone drawer: `toggle` opens and closes `sidebar`, `backdrop` closes it. Returns the
 * function that closes it. */
export function sidebarDrawer({ sidebar, backdrop, toggle }) {
  function close() {
    sidebar.classList.remove("open");
    backdrop.hidden = true;
    if (toggle) toggle.setAttribute("aria-expanded", "false");
  }
  if (toggle) {
    toggle.addEventListener("click", () => {
      const open = !sidebar.classList.contains("open");
      sidebar.classList.toggle("open", open);
      backdrop.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
    });
  }
  backdrop.addEventListener("click", close);
  return close;
}
