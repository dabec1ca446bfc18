/* Custodia pages: the only script. Re-fetches a server-rendered fragment into any element with
   data-refresh-url, every data-refresh-ms milliseconds; drives the review player's controls.
   No inline script, no framework. */
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

  /* The review player: speed, frame step, and on to the next segment of the same recording. */
  function player(controls) {
    var media = document.getElementById("player");
    if (!media || !media.play) { return; }
    var fps = parseFloat(controls.getAttribute("data-fps")) || 25;
    var speed = document.getElementById("speed");
    var speeds = ["0.25", "0.5", "1", "1.5", "2", "4"];

    function setSpeed(value) {
      media.playbackRate = parseFloat(value);
      if (speed) { speed.value = value; }
    }

    function step(frames) {
      media.pause();
      var t = media.currentTime + frames / fps;
      media.currentTime = Math.max(0, Math.min(t, media.duration || t));
    }

    if (speed) { speed.addEventListener("change", function () { setSpeed(speed.value); }); }
    var back = document.getElementById("frame-back");
    var fwd = document.getElementById("frame-fwd");
    if (back) { back.addEventListener("click", function () { step(-1); }); }
    if (fwd) { fwd.addEventListener("click", function () { step(1); }); }
    document.addEventListener("keydown", function (e) {
      var tag = (e.target && e.target.tagName) || "";
      if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || e.ctrlKey || e.metaKey || e.altKey) { return; }
      var at = speeds.indexOf(speed ? speed.value : "1");
      if (e.key === ",") { step(-1); } else if (e.key === ".") { step(1); } else if (e.key === "[" && at > 0) {
        setSpeed(speeds[at - 1]);
      } else if (e.key === "]" && at < speeds.length - 1) {
        setSpeed(speeds[at + 1]);
      } else if (e.key === " " && tag !== "BUTTON" && tag !== "A") {
        if (media.paused) { media.play(); } else { media.pause(); }
      } else { return; }
      e.preventDefault();
    });
    var next = document.getElementById("next-segment");
    media.addEventListener("ended", function () {
      if (next) { window.location.assign(next.getAttribute("href")); }  // one recording, many files
    });
    if (/[?&]play=1/.test(window.location.search)) {
      var played = media.play();
      if (played && played.catch) { played.catch(function () { /* autoplay refused: the user presses play */ }); }
    }
  }

  function start() {
    var regions = document.querySelectorAll("[data-refresh-url]");
    for (var i = 0; i < regions.length; i += 1) { liveRegion(regions[i]); }
    var controls = document.getElementById("player-controls");
    if (controls) { player(controls); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

// The GNSS track follows the player: the point (drawing and table row) at the playing second is marked.
(function () {
  function follow() {
    var player = document.getElementById("player");
    var track = document.getElementById("track");
    if (!player || !track || !player.addEventListener) return;
    var marks = track.querySelectorAll("[data-s]");
    player.addEventListener("timeupdate", function () {
      var now = player.currentTime, best = null, bestS = -1;
      marks.forEach(function (el) {
        var s = parseFloat(el.getAttribute("data-s"));
        if (!isNaN(s) && s <= now && s >= bestS) { bestS = s; }
      });
      marks.forEach(function (el) {
        var on = parseFloat(el.getAttribute("data-s")) === bestS;
        el.classList.toggle("track-now", on);
        if (on && el.tagName === "circle") best = el;
      });
      if (best) best.setAttribute("r", "6");
      marks.forEach(function (el) { if (el !== best && el.tagName === "circle") el.setAttribute("r", "3"); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", follow);
  } else {
    follow();
  }
})();
