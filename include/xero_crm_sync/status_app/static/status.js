// Retry and dismiss buttons: POST to the app's API (relative URL, so the page works under any prefix), then
// reload the page with the same filters so it shows what the database now holds.
"use strict";

async function act(button) {
  const id = button.dataset.errorId;
  const action = button.dataset.action;
  const flash = document.getElementById("flash");
  button.disabled = true;
  try {
    const response = await fetch(`api/errors/${id}/${action}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Requested-With": "xero-status", Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(body.detail || `HTTP ${response.status}`);
    }
    const what = action === "retry" ? "will be retried on the next run" : "was dismissed";
    sessionStorage.setItem("xero-status-flash", `Error ${id} ${what}.`);
    window.location.reload();
  } catch (err) {
    flash.textContent = `Could not ${action} error ${id}: ${err.message}`;
    flash.className = "flash-error";
    flash.hidden = false;
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const flash = document.getElementById("flash");
  const message = sessionStorage.getItem("xero-status-flash");
  if (message) {
    sessionStorage.removeItem("xero-status-flash");
    flash.textContent = message;
    flash.className = "flash-ok";
    flash.hidden = false;
  }
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => act(button));
  }
});
