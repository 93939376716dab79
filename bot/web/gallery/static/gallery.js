// Infinite scroll: when the "Older" link comes into view, fetch the next page's tiles and
// append them. Without JavaScript the link is an ordinary page link.
(function () {
  "use strict";
  var grid = document.getElementById("grid");
  var pages = document.getElementById("pages");
  if (!grid || !pages || !("IntersectionObserver" in window)) return;
  var busy = false;
  function nextLink() { return pages.querySelector("a.next"); }
  function load() {
    var link = nextLink();
    if (!link || busy) return;
    busy = true;
    fetch(link.getAttribute("data-more"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll(".tile").forEach(function (tile) { grid.appendChild(document.importNode(tile, true)); });
        var more = doc.querySelector("a.next");
        pages.textContent = "";
        if (more) { pages.appendChild(document.importNode(more, true)); watch(); }
      })
      .catch(function () { /* keep the plain link */ })
      .finally(function () { busy = false; });
  }
  var observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { if (e.isIntersecting) load(); });
  }, { rootMargin: "600px" });
  function watch() { var link = nextLink(); if (link) observer.observe(link); }
  watch();
  if (window.Telegram && window.Telegram.WebApp) {
    try { window.Telegram.WebApp.ready(); window.Telegram.WebApp.expand(); } catch (e) { /* old client */ }
  }
})();
