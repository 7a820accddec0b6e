// Forms with data-confirm ask before they submit (no inline scripts: the CSP forbids them).
// A ticked checkbox with its own data-confirm (e.g. "also delete the sessions") asks that
// instead: the stronger question for what the submit will now do.

/** Whether the user agrees to what submitting `form` does (true when it asks nothing).
 * Pages that build forms after load (ui/pairing.js) call it from their submit handlers. */
export function confirmed(form) {
  const ticked = form.querySelector("input[type=checkbox][data-confirm]:checked");
  const question = (ticked || form).dataset.confirm;
  return !question || window.confirm(question);
}

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!confirmed(form)) event.preventDefault();
  });
}
