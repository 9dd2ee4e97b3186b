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

function connect() {
  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  const es = new EventSource("/events");
  es.onopen = () => { live.dataset.state = "open"; live.textContent = "live"; };
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
