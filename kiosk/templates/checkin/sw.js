/* The kiosk's service worker: the touchscreen never shows a browser error page.
   A navigation that fails (the box restarting) gets the kiosk's own "one moment" screen
   in the visitor's language, from this cache; that screen returns to the start as soon as
   the box answers again. Nothing else is cached: every answer stays live. */
"use strict";
var CACHE = "vanbox-offline-{{ version }}";
var PAGES = {{ pages|tojson }};
var ASSETS = {{ assets|tojson }};
var LANGS = {{ langs|tojson }};
var DEFAULT = {{ default|tojson }};

self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) {
    return c.addAll(PAGES.concat(ASSETS).map(function (u) { return new Request(u, { cache: "reload" }); }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

function offlinePage(url) {
  var first = new URL(url).pathname.split("/")[1];
  var lang = LANGS.indexOf(first) >= 0 ? first : DEFAULT;
  return PAGES[LANGS.indexOf(lang)];
}

self.addEventListener("fetch", function (e) {
  var req = e.request;
  if (new URL(req.url).origin !== self.location.origin) return;
  if (req.mode === "navigate") {
    e.respondWith(fetch(req).catch(function () {
      return caches.open(CACHE).then(function (c) { return c.match(offlinePage(req.url)); })
        .then(function (r) { return r || Response.error(); });
    }));
  } else if (req.method === "GET" && ASSETS.indexOf(new URL(req.url).pathname) >= 0) {
    e.respondWith(fetch(req).catch(function () {
      return caches.open(CACHE).then(function (c) { return c.match(req, { ignoreSearch: true }); });
    }));
  }
});
