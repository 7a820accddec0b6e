// Webhook page: "Copy" buttons put the endpoint URL, the secret, the curl example or the
// gogcli command line on the clipboard (no inline scripts: the CSP forbids them).
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a LAN address is not a secure context: fall back to a selection copy.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  const label = button.textContent;
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    try {
      await copyText(source.textContent.trim());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
      window.getSelection().selectAllChildren(source);
    }
    setTimeout(() => { button.textContent = label; }, 2000);
  });
}

// Recent deliveries: re-read from the REST API (the login session authenticates it) every
// few seconds while the page is visible, so a sender's deliveries (refused ones too) show
// up without a reload. The rows are built like the server-rendered ones.
const table = document.getElementById("deliveries");
const REFRESH_MS = 3000;

function cell(...children) {
  const td = document.createElement("td");
  td.append(...children);
  return td;
}

function tag(name, className, text) {
  const node = document.createElement(name);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} byte${bytes === 1 ? "" : "s"}`;
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function deliveryRow(d) {
  const tr = document.createElement("tr");
  tr.dataset.delivery = String(d.id);
  tr.dataset.status = String(d.status);
  const when = new Date(d.receivedAt);
  const time = tag("time", "", when.toISOString().replace("T", " ").slice(0, 19));
  time.dateTime = when.toISOString();
  const pill = tag("span", d.status >= 400 ? "pill pill-off" : "pill", String(d.status));
  let run = "—";
  if (d.runId) {
    run = tag("a", "", d.runId);
    run.href = `${table.dataset.chatUrl}?session=${encodeURIComponent(d.sessionKey)}`;
  }
  tr.append(
    cell(time),
    cell(d.sourceIp || "—"),
    cell(pill, ` ${d.reason}`),
    cell(tag("code", "", d.deliveryId || "—")),
    cell(size(d.bodySize)),
    cell(run),
  );
  return tr;
}

async function refreshDeliveries() {
  if (document.visibilityState !== "visible") return;
  const response = await fetch(table.dataset.source, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) return; // logged out or deleted: the next navigation says so
  const { results } = await response.json();
  const shown = [...table.tBodies[0].rows].map((tr) => tr.dataset.delivery).join(",");
  if (results.map((d) => String(d.id)).join(",") === shown || !results.length) return;
  table.tBodies[0].replaceChildren(...results.map(deliveryRow));
}

if (table && table.dataset.source) {
  setInterval(() => refreshDeliveries().catch(() => {}), REFRESH_MS);
}
