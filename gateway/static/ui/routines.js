// The routine form: a preset fills the CRON field, and only the chosen schedule kind's
// field (and "delete after it ran" for one-time routines) is shown. Without JavaScript every
// field shows and the server uses the chosen kind's.
const form = document.getElementById("routine-form");
if (form) {
  const kind = form.querySelector("[name=schedule_kind]");
  const preset = document.getElementById("cron-preset");
  const cron = form.querySelector("[name=cron]");
  const show = () => {
    const chosen = kind.value;
    for (const name of ["cron", "cron-preset", "every", "at", "delete_after_run"]) {
      const field = form.querySelector(`[data-field="${name}"]`);
      if (!field) continue;
      const owner = name === "cron-preset" ? "cron" : name === "delete_after_run" ? "at" : name;
      field.hidden = owner !== chosen;
    }
    const target = form.querySelector("[name=target_kind]");
    const session = form.querySelector('[data-field="target_session_key"]');
    if (target && session) session.hidden = target.value !== "session";
  };
  kind.addEventListener("change", show);
  form.querySelector("[name=target_kind]")?.addEventListener("change", show);
  preset?.addEventListener("change", () => {
    if (preset.value) cron.value = preset.value;
  });
  show();
}
