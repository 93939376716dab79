// Telegram Mini App sign-in: send Telegram's signed initData to the server, which checks
// its HMAC and age. Telegram's script provides it; without the script (offline, tests)
// it is read from the launch URL's fragment (#tgWebAppData=…), where Telegram puts it.
(function () {
  "use strict";
  function fromFragment() {
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) return "";
    var params = new URLSearchParams(hash);
    return params.get("tgWebAppData") || "";
  }
  var app = window.Telegram && window.Telegram.WebApp;
  var initData = (app && app.initData) || fromFragment();
  var status = document.getElementById("miniapp-status");
  function show(id, state) {
    status.setAttribute("data-state", state);
    status.hidden = true;
    document.getElementById(id).hidden = false;
  }
  if (app) { try { app.ready(); app.expand(); } catch (e) { /* old client */ } }
  if (!initData) { show("miniapp-outside", "outside"); return; }
  var body = new URLSearchParams();
  body.set("init_data", initData);
  fetch("/gallery/app/signin", { method: "POST", body: body, credentials: "same-origin" })
    .then(function (r) { return r.json().then(function (j) { return { ok: r.ok && j.ok, body: j }; }); })
    .then(function (res) {
      if (res.ok) { window.location.replace(res.body.next || "/gallery/"); }
      else if (res.body && res.body.reason === "unknown_user") { show("miniapp-unknown", "unknown"); }
      else { show("miniapp-refused", "refused"); }
    })
    .catch(function () { show("miniapp-refused", "refused"); });
})();
