// Forms with data-confirm ask before they submit (no inline scripts: the CSP forbids them).
// A ticked checkbox with its own data-confirm (e.g. "also delete the sessions") asks that
// instead: the stronger question for what the submit will now do.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    const ticked = form.querySelector("input[type=checkbox][data-confirm]:checked");
    if (!window.confirm((ticked || form).dataset.confirm)) event.preventDefault();
  });
}
