// Sonde's web UI works without JavaScript; this file only adds comfort.
// It is served from the hub itself: the Content-Security-Policy allows no
// inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Refresh overview pages every 30 s while visible (data-refresh on <main>).
  const main = document.getElementById("main");
  const every = main && Number(main.dataset.refresh);
  if (every > 0) {
    setInterval(() => { if (!document.hidden) location.reload(); }, every * 1000);
  }
});
