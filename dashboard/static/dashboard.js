// Progressive enhancement only: every page works without this file.
"use strict";

// The overview refreshes itself in place, keeping the scroll position.
function scheduleRefresh() {
  const marker = document.querySelector("[data-refresh]");
  if (!marker) return;
  const seconds = Number(marker.dataset.refresh) || 15;
  setTimeout(async () => {
    try {
      const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok && !response.redirected) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById("main");
        if (fresh) document.getElementById("main").replaceWith(fresh);
      }
    } finally {
      scheduleRefresh();
    }
  }, seconds * 1000);
}

// Dropping a file on the upload zone fills the file input.
function enableDrop() {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file");
  if (!zone || !input) return;
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) input.files = event.dataTransfer.files;
  });
}

document.addEventListener("DOMContentLoaded", () => { scheduleRefresh(); enableDrop(); });
