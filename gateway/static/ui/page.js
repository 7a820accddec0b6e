// What the chat (chat.js) and the rooms page (rooms.js) share around their streams: the
// fatal-error banner, the open item in the URL, the composer (Enter sends, Shift+Enter is a
// new line) and the phone drawer of the sidebar.

/** The function that shows an error which stopped the page in the connection `banner`. */
export function fatalBanner(banner) {
  return (error) => {
    banner.hidden = false;
    banner.textContent = `Error: ${error.message || error}`;
  };
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
