// Vigil console: live updates over server-sent events and countdowns. Served as a
// file (the CSP forbids inline script); the pages work without it, only less live.
"use strict";

function fmtLeft(ms) {
  if (ms <= 0) return "expired";
  const s = Math.round(ms / 1000);
  if (s < 60) return s + "s left";
  if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s left";
  return Math.floor(s / 3600) + "h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m left";
}

function tick() {
  for (const t of document.querySelectorAll("time[data-expires]")) {
    t.textContent = fmtLeft(Date.parse(t.dataset.expires) - Date.now());
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
  const es = new EventSource("/events");
  es.onopen = () => { live.dataset.state = "open"; live.textContent = "live"; resync().catch(() => {}); };
  es.onerror = () => { live.dataset.state = "closed"; live.textContent = "reconnecting"; };
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
