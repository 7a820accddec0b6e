// The Devices page: pending device pairing requests (approve / reject) and paired devices
// (id, name, platform, role, scopes, first and last seen, token), whose token can be revoked
// and which can be removed. Kept current by `device.pair.requested` /
// `device.pair.resolved` and `presence` (a device connecting updates its last seen).
import {
  $, action, cell, codeList, el, fillTable, livePage, nameWithId, pill, timeOf,
} from "./pairing.js";

const els = {
  pending: $("device-pending"),
  pendingEmpty: $("device-pending-empty"),
  devices: $("devices"),
  devicesEmpty: $("devices-empty"),
};

function label(device) {
  return device.displayName || device.deviceId;
}

function pendingRow(request) {
  const tr = el("tr");
  tr.dataset.request = request.requestId;
  tr.dataset.device = request.deviceId;
  const decide = (method, text, question) =>
    action(text, () => client.call(method, { requestId: request.requestId }), {
      question,
      danger: method === "device.pair.reject",
      name: method,
      after: reload,
    });
  tr.append(
    cell(nameWithId(request.displayName, request.deviceId)),
    cell(request.platform || "—"),
    cell(request.role),
    cell(codeList(request.scopes)),
    cell(request.remoteIp || "—"),
    cell(timeOf(request.ts)),
    cell(
      decide("device.pair.approve", "Approve"),
      " ",
      decide("device.pair.reject", "Reject", `Reject device ${label(request)}?`),
    ),
  );
  return tr;
}

function deviceRow(device) {
  const tr = el("tr");
  tr.dataset.device = device.deviceId;
  tr.dataset.token = device.hasToken ? "issued" : "none";
  const who = nameWithId(device.displayName, device.deviceId);
  if (device.address) who.append(el("br"), el("small", "", device.address));
  const actions = cell();
  if (device.hasToken) {
    const revoke = () => client.call("device.token.revoke", { deviceId: device.deviceId });
    actions.append(
      action("Revoke token", revoke, {
        question: `Revoke the device token of ${label(device)}? It then needs the gateway secret to connect.`,
        name: "device.token.revoke",
        after: reload,
      }),
      " ",
    );
  }
  const remove = () => client.call("device.pair.remove", { deviceId: device.deviceId });
  actions.append(
    action("Remove", remove, {
      question: `Remove device ${label(device)}? It must pair again.`,
      danger: true,
      name: "device.pair.remove",
      after: reload,
    }),
  );
  tr.append(
    cell(who),
    cell(device.platform || "—"),
    cell(device.role),
    cell(codeList(device.scopes)),
    cell(timeOf(device.firstSeenMs)),
    cell(timeOf(device.lastSeenMs)),
    cell(device.hasToken ? pill("issued") : pill("none", true)),
    actions,
  );
  return tr;
}

async function load() {
  const { pending, paired } = await client.call("device.pair.list");
  fillTable(els.pending, els.pendingEmpty, pending.map(pendingRow));
  fillTable(els.devices, els.devicesEmpty, paired.map(deviceRow));
}

function onEvent(event, payload, again) {
  if (event === "device.pair.requested" || event === "device.pair.resolved") again();
  else if (event === "presence" && (payload.entries || []).some((e) => e.deviceId)) again();
}

const { client, reload } = livePage({
  events: ["device.pair.requested", "device.pair.resolved"],
  load,
  onEvent,
});
