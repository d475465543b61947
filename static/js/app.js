// Progressive enhancements; every page works without this file.
(function () {
  "use strict";

  function say(container, text) {
    var status = container.querySelector(".copy-status");
    if (status) { status.textContent = text; setTimeout(function () { status.textContent = ""; }, 2500); }
  }

  function copy(text, container) {
    if (!navigator.clipboard) { say(container, "Copy is not available in this browser."); return; }
    navigator.clipboard.writeText(text).then(
      function () { say(container, "Copied."); },
      function () { say(container, "Could not copy."); }
    );
  }

  // Copy a value already on the page (the new API token).
  document.querySelectorAll("[data-copy-from]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copyFrom);
      copy(source.textContent.trim(), button.parentElement);
    });
  });

  // JWT secret: reveal in place and copy, fetching the value only when asked.
  document.querySelectorAll("[data-secret-url]").forEach(function (box) {
    var value = box.querySelector(".secret-value");
    var toggle = box.querySelector("[data-secret-toggle]");
    var copyButton = box.querySelector("[data-secret-copy]");
    var masked = value.textContent;
    var word = toggle.querySelector(".toggle-word");
    var secret = toggle.dataset.shown === "true" ? value.textContent : null;

    function load() {
      if (secret !== null) { return Promise.resolve(secret); }
      return fetch(box.dataset.secretUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          // The password must be confirmed first: go the way the page works without this file
          // (the Reveal form), which passes the confirm page and comes back with the secret shown.
          if (response.status === 401) { box.querySelector(".secret-form").submit(); throw new Error("confirm"); }
          if (!response.ok) { throw new Error(response.status); }
          return response.json();
        })
        .then(function (body) { secret = body.jwt_secret; return secret; });
    }

    copyButton.hidden = false;
    toggle.addEventListener("click", function (event) {
      event.preventDefault();  // shown in place: no reload
      if (toggle.dataset.shown === "true") {
        value.textContent = masked.indexOf("•") === 0 ? masked : "••••••••••••••••••••••••";
        toggle.dataset.shown = "false";
        word.textContent = "Reveal";
        return;
      }
      load().then(function (text) {
        value.textContent = text;
        toggle.dataset.shown = "true";
        word.textContent = "Hide";
      }, function () { say(box, "Could not load the secret."); });
    });
    copyButton.addEventListener("click", function () {
      load().then(function (text) { copy(text, box); }, function () { say(box, "Could not load the secret."); });
    });
  });

  // After a refused form, start at the first field that needs fixing.
  var invalid = document.querySelector('form [aria-invalid="true"]') ||
    document.querySelector("form .has-error input:not([type=hidden]):not([disabled]), form .has-error textarea, form .has-error select");
  if (invalid) { invalid.focus(); }

  // Folds that would fill a phone's first screen (the list's filters) start closed there; wide
  // screens show them open (and hide their summary).
  var narrow = window.matchMedia ? window.matchMedia("(max-width: 760px)") : null;
  function fold() {
    document.querySelectorAll("details[data-fold-narrow]").forEach(function (details) { details.open = !narrow.matches; });
  }
  if (narrow) {
    fold();
    if (narrow.addEventListener) { narrow.addEventListener("change", fold); }
  }

  // Close an open row menu when clicking elsewhere or pressing Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.open = false; }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });
})();
