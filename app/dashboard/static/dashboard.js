// Small progressive enhancements; every page works without this script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = source.textContent;
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // Clipboard access needs a secure context; fall back to selecting the text.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        document.execCommand("copy");
      }
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  }

  // Submitting the filter form starts the breakdown at its first page again.
  const form = document.getElementById("filter-form");
  if (form) {
    form.addEventListener("submit", () => {
      for (const input of form.querySelectorAll("input[type=text], input[type=hidden]")) {
        // Empty fields would only clutter the address.
        if (!input.value.trim()) input.disabled = true;
      }
      const beta = form.querySelector("input[name=beta]");
      const weighting = form.querySelector("select[name=weighting]");
      if (beta && weighting && weighting.value !== "effective" && beta.value === "0.9999") {
        beta.disabled = true;
      }
    });
  }
});
