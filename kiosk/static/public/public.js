/* The public live map: draws the stops and vans, polls the public API with an ETag and
   re-renders the list. Works without map tiles (the stops give the bearings) and, for
   the list, without this script at all (the server renders it first). */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("public-config").textContent);
  var T = cfg.text;
  var data = cfg.data;
  var etag = cfg.etag;
  var skewMs = 0; // server clock minus this clock, from the Date header
  var state = { map: null, markers: {}, circles: {}, stops: [], fitted: false, polls: 0 };
  window.vanboxPublic = state;

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  // A function as the replacement: a "$&" or "$1" in a name or reason stays as it is.
  function fmt(s, k, v) { return s.replace("{" + k + "}", function () { return v; }); }
  // Right to left (Arabic, Farsi): every value put into a sentence is isolated (FSI ...
  // PDI) and a name alone in an element is a <bdi>, as kiosk/timetable.py Words.fill/bdi.
  var rtl = T.dir === "rtl";
  function iso(v) { return rtl ? "\u2068" + v + "\u2069" : String(v); }
  function bdi(s) { return rtl ? "<bdi>" + esc(s) + "</bdi>" : esc(s); }
  // All placeholders in one pass (a "{t}" in a place name stays as it is).
  function fill(s, vals) {
    return s.replace(/\{(\w+)\}/g, function (m, k) {
      return Object.prototype.hasOwnProperty.call(vals, k) ? iso(vals[k]) : m;
    });
  }
  // A counted text in the form for n's CLDR plural category ("vor 1 Minute", "21 минуту
  // назад"), as kiosk/timetable.py Words.counted picks it with Babel.
  // (A browser without Intl.PluralRules, older than 2019, gets one/other.)
  var plural = window.Intl && Intl.PluralRules ? new Intl.PluralRules(T.lang)
    : { select: function (n) { return n === 1 ? "one" : "other"; } };
  function counted(key, n, vals) {
    var forms = T[key];
    var s = forms[plural.select(n)] || forms.other;
    var all = { n: num(n) };
    Object.keys(vals || {}).forEach(function (k) { all[k] = vals[k]; });
    return fill(s, all);
  }
  // The language's digits (Arabic-Indic, Persian), as kiosk/timetable.py Words.num.
  function num(x) {
    return String(x).replace(/[0-9]/g, function (c) { return T.digits.charAt(+c); });
  }
  function hm(iso) { return iso ? num(iso.substr(11, 5)) : ""; }
  function date(d, m) { return num(fmt(fmt(T.date, "d", d), "m", m)); }
  function day(iso) {
    var d = iso.substr(0, 10);
    if (d === data.today) return T.today;
    var p = d.split("-"), t = data.today.split("-");
    var dt = Date.UTC(+p[0], +p[1] - 1, +p[2]);
    var today = Date.UTC(+t[0], +t[1] - 1, +t[2]);
    if (dt - today === 86400000) return T.tomorrow;
    var wd = (new Date(dt).getUTCDay() + 6) % 7; // Monday = 0
    return T.weekdays.split(",")[wd] + " " + date(+p[2], +p[1]);
  }
  function span(n) { return fmt(fmt(T.time_range, "a", hm(n.start)), "b", hm(n.end)); }
  // A changed visit: only what changed, as kiosk/timetable.py Words.change says it (the
  // list line around it already shows the visit's day, time and place).
  function note(n) {
    var s, was = n.planned_start;
    if (n.status === "cancelled") s = T.note_cancelled;
    else if (n.status === "delayed") s = counted("note_delayed", n.delay_min || 0, { t: hm(was) });
    else if (n.status === "moved") s = fill(T.note_moved, { day: day(was), t: hm(was) });
    else if (n.status === "extra") s = T.say_extra;
    else return "";
    if (n.reason) s += " " + fill(T.say_reason, { r: n.reason });
    return s;
  }
  function ago(iso) {
    if (!iso) return T.never_seen;
    var m = Math.max(0, Math.floor((Date.now() + skewMs - Date.parse(iso)) / 60000));
    if (m < 1) return T.just_now;
    if (m < 60) return counted("minutes_ago", m);
    var h = Math.floor(m / 60);
    if (h < 48) return counted("hours_ago", h);
    return counted("days_ago", Math.floor(h / 24));
  }
  // The badge and the "next stop" line, as kiosk/public.py Formatter.state / first_next.
  function stateText(v) {
    if (v.state !== "closed") return T["state_" + v.state];
    if (v.closed === "later") return fill(T.state_later, { t: hm(v.later_at) });
    return T["state_" + (v.closed || "none")];
  }
  function firstNext(v) {
    for (var i = 0; i < v.next.length; i++) {
      var n = v.next[i];
      if (n.is_next) {
        return fill(T.next_stop, { when: day(n.start), t: hm(n.start), place: n.name });
      }
    }
    return "";
  }

  function card(v) {
    var name = cfg.hub && !cfg.one
      ? '<a href="/van/' + encodeURIComponent(v.van) + "?lang=" + cfg.lang + '">' + bdi(v.name) + "</a>"
      : bdi(v.name);
    var h = '<article class="van state-' + esc(v.state) + '" data-van="' + esc(v.van) + '">';
    h += "<header><h2>" + name + '</h2><span class="badge">' + esc(stateText(v)) + "</span></header>";
    if (v.state === "open") {
      h += '<p class="where"><strong>' + bdi(v.stop.name) + '</strong> <span class="muni">(' +
        bdi(v.stop.municipality) + ")</span></p>";
      h += '<p class="hours">' + esc(fill(T.since, { t: hm(v.open_since) })) + " · " +
        esc(fill(T.until, { t: hm(v.open_until) })) + "</p>";
    } else if (v.state === "closed") {
      var nx = firstNext(v);
      if (nx) h += '<p class="where next-stop"><strong>' + esc(nx) + "</strong></p>";
    } else {
      h += '<p class="where">' + esc(T[v.state + "_text"]) + "</p>";
    }
    if (v.last_seen) {
      h += '<p class="seen">' + esc(T.last_seen) + ': <time class="ago" datetime="' +
        esc(v.last_seen) + '">' + esc(ago(v.last_seen)) + "</time></p>";
    }
    h += "<h3>" + esc(T.next) + "</h3>";
    if (v.next.length) {
      h += '<ul class="next">';
      v.next.forEach(function (n) {
        h += '<li class="st-' + esc(n.status) + (n.is_next ? " is-next" : "") + '">' +
          (n.is_next ? '<span class="next-badge">' + esc(T.next_badge) + "</span> " : "") +
          '<span class="when">' + esc(day(n.start)) + T.sep +
          esc(span(n)) + '</span> <span class="stop">' + bdi(n.name) + "</span>" +
          (n.status !== "planned" ? ' <span class="note">' + esc(note(n)) + "</span>" : "") +
          "</li>";
      });
      h += "</ul>";
    } else {
      h += "<p>" + esc(T.no_next) + "</p>";
    }
    return h + "</article>";
  }

  function renderList() {
    var el = document.getElementById("vans");
    el.innerHTML = data.vans.length ? data.vans.map(card).join("") :
      '<p class="empty">' + esc(T.no_vans) + "</p>";
  }

  function refreshAgo() {
    var times = document.querySelectorAll("time.ago");
    for (var i = 0; i < times.length; i++) {
      times[i].textContent = ago(times[i].getAttribute("datetime"));
    }
  }

  // --- map ---------------------------------------------------------------------------

  function initMap() {
    if (typeof L === "undefined" || document.body.classList.contains("list-only")) return;
    var map = L.map("map", { zoomSnap: 0.5, scrollWheelZoom: false });
    state.map = map;
    document.body.classList.add("has-map");
    // The Landkreis outline shipped with the package: faint under the tiles, the map
    // itself (with the municipality names) when they fail.
    if (cfg.outline && cfg.outline.length) {
      L.polygon(cfg.outline, { color: "#4a5a6a", weight: 2, fillColor: "#ffffff",
        fillOpacity: 0.35, interactive: false }).addTo(map);
    }
    if (cfg.tile_url) {
      var tiles = L.tileLayer(cfg.tile_url, { attribution: cfg.tile_attribution, maxZoom: 18 });
      tiles.on("tileerror", noTiles);
      tiles.on("tileload", function () {
        document.getElementById("no-tiles").hidden = true;
        document.body.classList.remove("no-tiles");
        if (state.munis) {
          state.munis.forEach(function (m) { map.removeLayer(m); });
          state.munis = null;
        }
      });
      tiles.addTo(map);
    }
    drawStops();
    updateMap();
    if (!cfg.tile_url) noTiles();
  }

  function noTiles() {
    document.getElementById("no-tiles").hidden = false;
    if (document.body.classList.contains("no-tiles")) return;
    document.body.classList.add("no-tiles");
    var map = state.map;
    if (!map || state.munis) return;
    // The municipalities' names give the bearings; one whose stops are named already
    // (a wide screen, few stops) is left out, so that names do not overlap.
    var named = {};
    if (state.permanent) data.stops.forEach(function (s) { named[s.municipality] = true; });
    state.munis = cfg.munis.filter(function (m) { return !named[m[0]]; }).map(function (m) {
      return L.circleMarker([m[1], m[2]], { radius: 1, opacity: 0, fillOpacity: 0,
        interactive: false }).bindTooltip(esc(m[0]), { permanent: true, direction: "center",
        className: "muni-label" }).addTo(map);
    });
  }

  // The plan's stops; each van's next stop is larger, coloured and always named.
  function drawStops() {
    var map = state.map;
    if (!map) return;
    state.stops.forEach(function (m) { map.removeLayer(m); });
    state.stops = [];
    // On a phone, many stop names would run into each other: then a name shows when its
    // point is tapped (the list below names every stop anyway), except the next stop's.
    var permanent = state.permanent = data.stops.length <= 4 || map.getSize().x >= 600;
    // the next stops last, so that they are drawn on top
    var ordered = data.stops.filter(function (s) { return !s.next; })
      .concat(data.stops.filter(function (s) { return s.next; }));
    ordered.forEach(function (s) {
      var m = L.circleMarker([s.lat, s.lon], s.next ? {
        radius: 10, color: "#ffffff", weight: 3, fillColor: "#b3261e", fillOpacity: 1,
      } : {
        radius: 6, color: "#4a4a4a", weight: 2, fillColor: "#ffffff", fillOpacity: 1,
      }).addTo(map);
      m.bindTooltip(esc(s.name), {
        permanent: permanent || s.next, direction: "right",
        className: s.next ? "stop-label next-label" : "stop-label", offset: [10, 0] });
      state.stops.push(m);
    });
  }

  function vanIcon(v) {
    return L.divIcon({
      className: "van-pin-wrap",
      html: '<span class="van-pin state-' + esc(v.state) + '">' + esc(v.name) + "</span>",
      iconSize: null,
      iconAnchor: [0, 0],
    });
  }

  function updateMap() {
    var map = state.map;
    if (!map) return;
    var seen = {};
    data.vans.forEach(function (v) {
      if (!v.position) return;
      seen[v.van] = true;
      var ll = [v.position.lat, v.position.lon];
      var mk = state.markers[v.van];
      if (mk) {
        mk.setLatLng(ll);
        mk.setIcon(vanIcon(v));
      } else {
        mk = state.markers[v.van] = L.marker(ll, { icon: vanIcon(v), keyboard: false,
          title: v.name, zIndexOffset: 1000 }).addTo(map);
      }
      var c = state.circles[v.van];
      if (v.position.coarse) {
        if (c) { c.setLatLng(ll); c.setRadius(v.position.radius_m); }
        else {
          state.circles[v.van] = L.circle(ll, { radius: v.position.radius_m, color: "#1f5fa8",
            weight: 1, fillOpacity: 0.12 }).addTo(map);
        }
      } else if (c) { map.removeLayer(c); delete state.circles[v.van]; }
    });
    Object.keys(state.markers).forEach(function (k) {
      if (!seen[k]) {
        map.removeLayer(state.markers[k]);
        delete state.markers[k];
        if (state.circles[k]) { map.removeLayer(state.circles[k]); delete state.circles[k]; }
      }
    });
    if (!state.fitted) {
      // the whole Landkreis (its outline), the stops and the vans
      var pts = (cfg.outline || []).concat(data.stops.map(function (s) { return [s.lat, s.lon]; }));
      data.vans.forEach(function (v) { if (v.position) pts.push([v.position.lat, v.position.lon]); });
      if (pts.length) map.fitBounds(pts, {
        // room for the van labels above the points and the stop names to their right
        paddingTopLeft: [20, 40], paddingBottomRight: [20, 10], maxZoom: 14,
      });
      else map.setView([52.3, 10.23], 10);
      state.fitted = true;
    }
  }

  // --- polling -------------------------------------------------------------------------

  var failures = 0;
  // Polls with the last ETag as ?since=: an unchanged answer is {"unchanged": true}
  // (a 304 would make the server close the connection every time).
  function poll() {
    var url = cfg.api + (etag ? "?since=" + encodeURIComponent(etag) : "");
    fetch(url, { cache: "no-store" }).then(function (r) {
      var date = r.headers.get("X-Vanbox-Now") || r.headers.get("Date");
      if (date) skewMs = Date.parse(date) - Date.now();
      if (r.status === 304) return null;
      if (!r.ok) throw new Error("HTTP " + r.status);
      var tag = r.headers.get("ETag");
      etag = tag ? tag.replace(/^W\//, "").replace(/"/g, "") : null;
      return r.json();
    }).then(function (fresh) {
      failures = 0;
      state.polls++;
      document.getElementById("stale").hidden = true;
      if (fresh && !fresh.unchanged) {
        data = fresh;
        renderList();
        drawStops();
        updateMap();
      } else {
        refreshAgo();
      }
    }).catch(function () {
      failures++;
      document.getElementById("stale").hidden = failures < 3;
    }).then(function () {
      var wait = Math.min(cfg.poll_ms * Math.pow(2, Math.min(failures, 4)), 15000);
      setTimeout(poll, document.hidden ? Math.max(wait, 10000) : wait);
    });
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) refreshAgo(); });
  var toggles = document.querySelectorAll("a.toggle");
  for (var i = 0; i < toggles.length; i++) {
    toggles[i].addEventListener("click", function (e) {
      e.preventDefault();
      var list = this.getAttribute("data-view") === "list";
      document.body.classList.toggle("list-only", list);
      history.replaceState(null, "", list ? "?view=list&lang=" + cfg.lang : "?lang=" + cfg.lang);
      if (!list && !state.map) initMap();
      else if (!list && state.map) state.map.invalidateSize();
    });
  }
  // The wording, for the tests: the same strings as the server's for the same values.
  state.words = { counted: counted, fill: fill, note: note, ago: ago, category: function (n) {
    return plural.select(n);
  } };
  document.body.classList.remove("no-js");
  renderList();
  initMap();
  setInterval(refreshAgo, 15000);
  setTimeout(poll, cfg.poll_ms);
})();
