// footfall serve: polls /api/live and redraws each panel in place (no reload). A panel whose
// data failed shows the message; a server that is down is retried.
(function () {
  "use strict";
  var charts = {};
  var BASE = { animation: false, backgroundColor: "transparent", textStyle: { color: "#e6e9f2" } };
  function draw(id, option) {
    var el = document.getElementById(id);
    if (!charts[id]) { charts[id] = echarts.init(el, "dark", { renderer: "svg" }); }
    charts[id].setOption(Object.assign({}, BASE, option), true);
  }
  function set(id, text) { document.getElementById(id).textContent = text; }
  function failed(panel, p) {
    var box = document.getElementById(panel);
    var e = box.querySelector(".error");
    if (p && p.error) {
      if (!e) { e = document.createElement("p"); e.className = "error"; box.appendChild(e); }
      e.textContent = p.error;
      return true;
    }
    if (e) { e.remove(); }
    return false;
  }
  function axis(labels, values, name) {
    return {
      grid: { left: 50, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: labels },
      yAxis: { type: "value" },
      series: [{ name: name, type: "line", data: values, areaStyle: { opacity: 0.25 }, showSymbol: false }]
    };
  }
  function render(D) {
    set("mall", D.mall || "footfall live");
    var fresh = document.getElementById("fresh");
    if (D.error && !D.today) { fresh.textContent = D.error; fresh.className = "fresh stale"; return; }
    var mins = Math.floor(D.age_seconds / 60);
    var age = mins < 1 ? "under a minute" : mins < 120 ? mins + " min" : Math.floor(mins / 60) + " h";
    fresh.textContent = "as of " + D.as_of + " local, newest data " + D.newest + " (" + age + " old)" +
      (D.stale ? " — DATA IS STALE" : "") + (D.update_error ? " — update failed: " + D.update_error : "");
    fresh.className = D.stale || D.update_error ? "fresh stale" : "fresh";
    if (!failed("p-today", D.today)) {
      set("today", D.today.so_far === null ? "–" : D.today.so_far);
      set("today-vs", D.today.week_ago === null ? D.date + ": no data a week before" :
        D.date + ": " + D.today.week_ago + " a week ago at this time");
    }
    if (!failed("p-now", D.occupancy)) {
      set("now", D.occupancy.now === null || D.occupancy.now === undefined ? "–" : D.occupancy.now);
      set("now-at", D.occupancy.at ? "in the 5 minutes from " + D.occupancy.at : "");
    }
    if (!failed("p-occupancy", D.occupancy)) { draw("occupancy", axis(D.occupancy.slots, D.occupancy.visitors, "in the shops")); }
    if (!failed("p-hourly", D.hourly)) {
      var h = axis(D.hourly.hours, D.hourly.visitors, "visitors");
      h.series[0].type = "bar";
      h.series[0].label = { show: true, position: "top" };
      draw("hourly", h);
    }
    if (!failed("p-top", D.top)) {
      draw("top", {
        grid: { left: 170, right: 40, top: 8, bottom: 8 },
        xAxis: { type: "value", show: false },
        yAxis: { type: "category", inverse: true, data: D.top.shops, axisLabel: { width: 160, overflow: "truncate" } },
        series: [{ name: "visitors", type: "bar", data: D.top.visitors, label: { show: true, position: "right" } }]
      });
    }
    if (!failed("p-density", D.density)) {
      var max = Math.max.apply(null, [1].concat(D.density.cells.map(function (c) { return c[2]; })));
      draw("density", {
        grid: { left: 30, right: 10, top: 8, bottom: 40 },
        xAxis: { type: "value", show: false }, yAxis: { type: "value", show: false, inverse: true },
        visualMap: { min: 0, max: max, orient: "horizontal", left: "center", bottom: 0, textStyle: { color: "#e6e9f2" } },
        series: [{ type: "heatmap", data: D.density.cells, label: { show: true } }]
      });
    }
  }
  function poll() {
    fetch("/api/live", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(render)
      .catch(function (e) {
        var f = document.getElementById("fresh");
        f.textContent = "server unreachable (" + e.message + "), retrying…";
        f.className = "fresh stale";
      })
      .then(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
