// Vigil console: live updates over server-sent events and countdowns. Served as a
// file (the CSP forbids inline script); the pages work without it, only less live.
"use strict";

// The same rules as the server's (internal/console/format.go), so a time reads the
// same before and after the script first touches it.
function fmtDuration(s) {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
}

function fmtExpires(ms) {
  if (ms <= 0) return "expired";
  return "expires in " + fmtDuration(Math.round(ms / 1000));
}

// fmtRelative returns "2 minutes ago", "in 3 hours", …, or null past a week, where
// the server's date stays.
function fmtRelative(ms) {
  const future = ms < 0;
  const s = Math.floor(Math.abs(ms) / 1000);
  if (s < 10) return future ? "in a few seconds" : "just now";
  let n, unit;
  if (s < 60) [n, unit] = [s, "second"];
  else if (s < 3600) [n, unit] = [Math.floor(s / 60), "minute"];
  else if (s < 86400) [n, unit] = [Math.floor(s / 3600), "hour"];
  else if (s < 7 * 86400) [n, unit] = [Math.floor(s / 86400), "day"];
  else return null;
  const d = n + " " + unit + (n === 1 ? "" : "s");
  return future ? "in " + d : d + " ago";
}

function tick() {
  const now = Date.now();
  for (const t of document.querySelectorAll("time[data-expires]")) {
    t.textContent = fmtExpires(Date.parse(t.dataset.expires) - now);
  }
  for (const t of document.querySelectorAll("time[data-rel]")) {
    const text = fmtRelative(now - Date.parse(t.getAttribute("datetime")));
    if (text !== null && t.textContent !== text) t.textContent = text;
  }
}

// submitting is set once a form is sent: a live update must not reload the page
// over the navigation the form started.
let submitting = false;
document.addEventListener("submit", () => { submitting = true; });

function busy(el) {
  if (submitting) return true;
  const a = document.activeElement;
  return a && el.contains(a) && (a.tagName === "INPUT" || a.tagName === "TEXTAREA");
}

function updateCount() {
  const pending = document.getElementById("pending");
  if (!pending) return;
  const n = pending.querySelectorAll(".card").length;
  document.getElementById("pending-count").textContent = n;
  document.getElementById("pending-empty").hidden = n > 0;
}

async function refreshCard(id) {
  const pending = document.getElementById("pending");
  if (!pending) return;
  const res = await fetch("/approvals/" + encodeURIComponent(id) + "/card", { credentials: "same-origin" });
  if (!res.ok) return;
  const tpl = document.createElement("template");
  tpl.innerHTML = (await res.text()).trim();
  const card = tpl.content.firstElementChild;
  if (!card) return;
  const old = document.getElementById(card.id);
  if (old && busy(old) && card.dataset.status === "pending") return; // don't wipe a reviewer's typing
  if (card.dataset.status === "pending") {
    if (old) old.replaceWith(card); else pending.appendChild(card);
  } else {
    if (old) old.remove();
    const recent = document.getElementById("recent");
    if (recent) recent.prepend(card);
  }
  updateCount();
  tick();
}

// resync brings the pending list up to date when the live stream (re)opens: a request
// raised or decided while the stream was not open (between the page's render and its
// first connection, or during a reconnect) sent its event to nobody on this page.
async function resync() {
  const pending = document.getElementById("pending");
  if (!pending) return;
  const res = await fetch("/approvals", { credentials: "same-origin" });
  if (!res.ok) return;
  const doc = new DOMParser().parseFromString(await res.text(), "text/html");
  const ids = (root) => new Set(root ? [...root.querySelectorAll(".card")].map((c) => c.dataset.id) : []);
  const now = ids(doc.getElementById("pending"));
  const shown = ids(pending);
  for (const id of now) if (!shown.has(id)) refreshCard(id);
  for (const id of shown) if (!now.has(id)) refreshCard(id);
}

function connect() {
  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  // The badge says what the stream is doing: connecting… until it first opens, live
  // while open, reconnecting… after a drop (EventSource retries by itself), offline
  // once the browser has given up.
  const show = (state, text, title) => {
    live.dataset.state = state;
    live.textContent = text;
    live.title = "Live updates: " + title;
  };
  live.hidden = false;
  show("connecting", "connecting…", "connecting");
  const es = new EventSource("/events");
  es.onopen = () => { show("open", "live", "on; new requests appear as they arrive"); resync().catch(() => {}); };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) show("closed", "offline", "off; reload the page");
    else show("reconnecting", "reconnecting…", "the connection dropped; retrying");
  };
  es.addEventListener("approval", (e) => {
    const n = JSON.parse(e.data);
    if (n.id) refreshCard(n.id);
  });
  es.addEventListener("killswitch", (e) => {
    const n = JSON.parse(e.data);
    if (busy(document.body)) return;
    // The kill-switch page shows statuses; a resync means notices may have been missed.
    if (document.querySelector("section.halt") || n.kind === "resync") location.reload();
  });
  es.addEventListener("signedout", () => { es.close(); location.href = "/signin"; });
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 1000);
  connect();
});
