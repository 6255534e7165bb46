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
  // Account page: offer the browser's own time zone.
  const use = document.getElementById("use-browser-zone");
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (use && zone) {
    use.textContent = zone;
    use.closest(".browser-zone").hidden = false;
    use.addEventListener("click", () => { document.getElementById("zone").value = zone; });
  }
});
