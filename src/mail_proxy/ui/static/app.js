// mail-proxy dashboard: live regions and confirmations. No framework, no build.
"use strict";

// An element with data-live="url" data-every="seconds" is refreshed from url (an
// HTML fragment) while the tab is visible: one small request per interval.
function startLive(element) {
  const url = element.dataset.live;
  const every = Math.max(2, Number(element.dataset.every || 10)) * 1000;
  async function refresh() {
    if (document.hidden) return;
    try {
      const answer = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (answer.redirected || !answer.ok) return; // logged out or failing: keep what is shown
      const html = await answer.text();
      if (html !== element.dataset.last) {
        element.innerHTML = html;
        element.dataset.last = html;
      }
    } catch (error) {
      // offline for a moment: the next interval tries again
    }
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
}

// A form with data-confirm="question" asks before it is sent.
function confirmForms() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(startLive);
  confirmForms();
});
