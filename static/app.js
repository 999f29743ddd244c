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

// The config editor (textarea[data-editor] beside a pre[data-gutter] of line numbers): Tab indents by two
// spaces (Shift+Tab removes them), Esc then Tab leaves the editor (no keyboard trap), the line numbers
// follow the text and its scrolling, and "Line N" links in the error list put the cursor on that line.
const INDENT = "  ";
let tabLeavesEditor = false;

function editorGutter(textarea) {
  return textarea.closest(".code-editor")?.querySelector("[data-gutter]") ?? null;
}

function renumber(textarea) {
  const gutter = editorGutter(textarea);
  if (!gutter) return;
  const lines = Math.max(1, textarea.value.split("\n").length - (textarea.value.endsWith("\n") ? 1 : 0));
  if (gutter.childElementCount === lines) return;
  const marked = new Set((gutter.dataset.errorLines || "").split(",").filter(Boolean).map(Number));
  const spans = [];
  for (let i = 1; i <= lines; i++) {
    const span = document.createElement("span");
    if (marked.has(i)) span.className = "err";
    span.textContent = String(i);
    spans.push(span, "\n");
  }
  gutter.replaceChildren(...spans);
}

function lineStart(text, index) {
  return text.lastIndexOf("\n", index - 1) + 1;
}

function indentSelection(textarea, outdent) {
  const { selectionStart: start, selectionEnd: end, value } = textarea;
  const first = lineStart(value, start);
  if (!outdent && start === end) {
    textarea.setRangeText(INDENT, start, end, "end");
  } else {
    const block = value.slice(first, end);
    const changed = outdent ? block.replace(/^ {1,2}/gm, "") : block.replace(/^/gm, INDENT);
    textarea.setRangeText(changed, first, end, "select");
  }
  textarea.dispatchEvent(new Event("input", { bubbles: true }));
}

document.addEventListener("keydown", (event) => {
  const textarea = event.target;
  if (!(textarea instanceof HTMLTextAreaElement) || !textarea.hasAttribute("data-editor")) return;
  if (event.key === "Escape") {
    tabLeavesEditor = true;
    return;
  }
  if (event.key !== "Tab" || event.ctrlKey || event.altKey || event.metaKey) return;
  if (tabLeavesEditor) {
    tabLeavesEditor = false;
    return; // the browser moves focus on
  }
  event.preventDefault();
  indentSelection(textarea, event.shiftKey);
});

document.addEventListener("focusin", (event) => {
  if (event.target instanceof HTMLTextAreaElement && event.target.hasAttribute("data-editor")) {
    tabLeavesEditor = false;
  }
});

document.addEventListener("input", (event) => {
  if (event.target instanceof HTMLTextAreaElement && event.target.hasAttribute("data-editor")) {
    renumber(event.target);
  }
});

// The gutter scrolls with the text (scroll events do not bubble: listen in the capture phase).
document.addEventListener("scroll", (event) => {
  const textarea = event.target;
  if (!(textarea instanceof HTMLTextAreaElement) || !textarea.hasAttribute("data-editor")) return;
  const gutter = editorGutter(textarea);
  if (gutter) gutter.scrollTop = textarea.scrollTop;
}, true);

document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("[data-goto-line]") : null;
  if (!link) return;
  const textarea = document.querySelector("textarea[data-editor]");
  if (!textarea) return;
  event.preventDefault();
  const line = Number(link.getAttribute("data-goto-line"));
  const column = Number(link.getAttribute("data-goto-column") || "1");
  const lines = textarea.value.split("\n");
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
  const lineText = lines[line - 1] ?? "";
  textarea.focus();
  textarea.setSelectionRange(offset + Math.min(column - 1, lineText.length), offset + lineText.length);
  const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 20;
  textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
});

function setUpEditors() {
  for (const textarea of document.querySelectorAll("textarea[data-editor]")) renumber(textarea);
}
document.addEventListener("DOMContentLoaded", setUpEditors);
document.addEventListener("htmx:after:swap", setUpEditors);
