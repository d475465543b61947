// Live pages (docs/architecture.md, "Live pages"): poll the page's live endpoint and put the
// server-rendered regions it answers into the elements marked data-live. Without this file the
// page shows what it had when it loaded, and a reload shows the truth.
(function () {
  "use strict";

  var root = document.querySelector("[data-live-url]");
  if (!root || !window.fetch) { return; }
  var url = root.getAttribute("data-live-url");

  var FAST = 1500;       // ms between polls while changes keep coming
  var FACTOR = 1.5;      // back-off per poll that found nothing new
  var ERROR_MAX = 15000; // the longest wait after errors
  var cap = 2000;        // the longest wait when quiet: the server's poll_after_ms
  var delay = FAST;
  var etag = null;
  var timer = null;
  var running = false;
  var stopped = false;

  // A polite announcement of status changes (not of every tick).
  var announcer = document.createElement("div");
  announcer.className = "visually-hidden";
  announcer.setAttribute("aria-live", "polite");
  announcer.setAttribute("data-live-announcer", "");
  document.body.appendChild(announcer);

  function status(region) {
    var badge = region.querySelector(".badge");
    return badge ? badge.textContent.trim() : "";
  }

  // "Sending… 4 s": the seconds run on between polls from what the server counted.
  function stamp(scope) {
    var now = Date.now();
    scope.querySelectorAll(".elapsed[data-seconds]").forEach(function (el) { el.liveSeenAt = now; });
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".elapsed[data-seconds]").forEach(function (el) {
      if (el.liveSeenAt === undefined) { el.liveSeenAt = now; }
      var seconds = parseInt(el.getAttribute("data-seconds"), 10) + Math.floor((now - el.liveSeenAt) / 1000);
      var text = seconds + " s";
      if (el.textContent !== text) { el.textContent = text; }
    });
  }

  // A region the person is using (focus inside, an open menu) is left alone until they leave it.
  function inUse(region) {
    var active = document.activeElement;
    return (active && active !== document.body && region.contains(active)) || !!region.querySelector("details[open]");
  }

  // The same markup but for CSRF tokens, which differ from one rendering to the next.
  function unchanged(region, fresh) {
    var mine = region.querySelectorAll("input[name=csrf_token]");
    var theirs = fresh.querySelectorAll("input[name=csrf_token]");
    if (mine.length === theirs.length) {
      for (var i = 0; i < mine.length; i += 1) { theirs[i].setAttribute("value", mine[i].getAttribute("value")); }
    }
    return fresh.isEqualNode(region);
  }

  // Put each region in place; false when one had to wait (so the next poll brings it again).
  function apply(regions) {
    var complete = true;
    var said = [];
    document.querySelectorAll("[data-live]").forEach(function (region) {
      var name = region.getAttribute("data-live");
      if (!Object.prototype.hasOwnProperty.call(regions, name)) { return; }
      var fresh = region.cloneNode(false);
      fresh.innerHTML = regions[name];
      if (unchanged(region, fresh)) { return; }
      if (inUse(region)) { complete = false; return; }
      var before = status(region);
      region.replaceChildren.apply(region, Array.prototype.slice.call(fresh.childNodes));
      stamp(region);
      var after = status(region);
      var say = region.getAttribute("data-live-say");
      if (say && after && after !== before) { said.push(say + ": " + after); }
    });
    if (said.length) { announcer.textContent = said.join(". "); }
    return complete;
  }

  // The session ended (idle, too old): say so at the top of the page, with the way back in.
  function ended(body) {
    if (!body || !body.message || document.querySelector("[data-session-ended]")) { return null; }
    var main = document.getElementById("main") || document.body;
    var note = document.createElement("div");
    note.className = "flashes";
    note.setAttribute("role", "alert");
    note.setAttribute("data-session-ended", "");
    var text = document.createElement("p");
    text.className = "flash flash-info";
    text.textContent = body.message + " ";
    var link = document.createElement("a");
    link.href = (body.login_url || "/login") + "?next=" + encodeURIComponent(location.pathname + location.search);
    link.textContent = "Log in";
    text.appendChild(link);
    note.appendChild(text);
    main.insertBefore(note, main.firstChild);
    return null;
  }

  function schedule(wait) {
    clearTimeout(timer);
    timer = null;
    if (!stopped && !document.hidden) { timer = setTimeout(poll, wait); }
  }

  function poll() {
    if (stopped || running || document.hidden) { return; }
    running = true;
    var headers = { Accept: "application/json" };
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(url, { credentials: "same-origin", cache: "no-store", redirect: "manual", headers: headers })
      .then(function (response) {
        if (response.status === 304) { delay = Math.min(delay * FACTOR, cap); return null; }
        // Logged out, gone, or another account's: polling again would not change that.
        if (response.type === "opaqueredirect" || [401, 403, 404].indexOf(response.status) >= 0) {
          stopped = true;
          if (response.status === 401) { return response.json().then(ended, function () { return null; }); }
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json().then(function (body) {
          if (apply(body.regions)) { etag = response.headers.get("ETag"); }
          cap = body.poll_after_ms || cap;
          delay = FAST;
        });
      })
      .catch(function () { delay = Math.min(Math.max(delay, FAST) * FACTOR, ERROR_MAX); })
      .then(function () { running = false; schedule(delay); });
  }

  function wake() {
    delay = FAST;
    if (!running) { clearTimeout(timer); poll(); }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { clearTimeout(timer); timer = null; } else { wake(); }
  });
  window.addEventListener("focus", wake);
  stamp(document);
  setInterval(tick, 1000);
  schedule(FAST);
})();
