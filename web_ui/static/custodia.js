/* Custodia pages: the only script. Re-fetches a server-rendered fragment into any element with
   data-refresh-url, every data-refresh-ms milliseconds. No inline script, no framework. */
"use strict";
(function () {
  function liveRegion(el) {
    var url = el.getAttribute("data-refresh-url");
    var every = parseInt(el.getAttribute("data-refresh-ms"), 10) || 2000;
    var staleNote = document.getElementById("stale-note");
    var busy = false;

    function stale(on) {
      if (staleNote) { staleNote.hidden = !on; }
    }

    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      // Accept stays */*: a lapsed session then answers 401 instead of redirecting to the login page.
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (response.status === 401 || response.status === 403) {
            window.location.reload();
            return null;
          }
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          if (html !== null) { el.innerHTML = html; stale(false); }
        })
        .catch(function () { stale(true); })
        .then(function () { busy = false; });
    }

    window.setInterval(tick, every);
    document.addEventListener("visibilitychange", tick);
  }

  function start() {
    var regions = document.querySelectorAll("[data-refresh-url]");
    for (var i = 0; i < regions.length; i += 1) { liveRegion(regions[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
