// The console's only script besides htmx (loaded as a module; no inline script anywhere, the CSP forbids
// it). Everything here is an enhancement: pages work without it.

// "Select all" checkboxes: <input type="checkbox" data-select-all="id"> ticks every box named "id" in its
// table; [data-selected-count] elements show how many are ticked.
function updateSelectedCount() {
  const count = document.querySelectorAll('input[type="checkbox"][name="id"]:checked').length;
  for (const el of document.querySelectorAll("[data-selected-count]")) {
    el.textContent = count ? `(${count} selected)` : "(tick nodes in the table)";
  }
}

document.addEventListener("change", (event) => {
  const target = event.target;
  if (!(target instanceof HTMLInputElement) || target.type !== "checkbox") return;
  const group = target.dataset.selectAll;
  if (group) {
    const table = target.closest("table") ?? document;
    for (const box of table.querySelectorAll(`input[type="checkbox"][name="${group}"]`)) {
      box.checked = target.checked;
    }
  }
  updateSelectedCount();
});

// After htmx swaps new rows in, recount (a refresh keeps ticked boxes ticked: the server re-renders them).
document.addEventListener("htmx:after:swap", updateSelectedCount);
document.addEventListener("DOMContentLoaded", updateSelectedCount);

// A refresh that fails (server restarting, network gone) says so in the alert region instead of silently
// showing stale figures; the next successful refresh clears it.
document.addEventListener("htmx:error", () => {
  const alert = document.getElementById("page-alert");
  if (alert && !alert.textContent.trim()) {
    alert.innerHTML = "";
    const box = document.createElement("div");
    box.className = "alert alert-bad";
    box.textContent = "Cannot reach the server; figures on this page may be out of date. Retrying.";
    alert.append(box);
  }
});
document.addEventListener("htmx:after:request", (event) => {
  const ctx = event.detail?.ctx;
  const alert = document.getElementById("page-alert");
  if (alert && ctx?.response?.status && ctx.response.status < 400) alert.replaceChildren();
});
