// footfall report: every chart from the inlined data, rendered as SVG (text stays text),
// without animation, so the page is the same on every open.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("footfall-data").textContent);
  var main = document.getElementById("charts");
  var BASE = { animation: false, textStyle: { fontFamily: getComputedStyle(document.body).fontFamily } };

  function section(id, title, caption, tall) {
    var s = document.createElement("section");
    var h = document.createElement("h2");
    h.textContent = title;
    var p = document.createElement("p");
    p.className = "caption";
    p.textContent = caption;
    var div = document.createElement("div");
    div.id = id;
    div.className = tall ? "chart tall" : "chart";
    s.appendChild(h);
    s.appendChild(p);
    s.appendChild(div);
    main.appendChild(s);
    return div;
  }

  function chart(id, title, caption, option, tall) {
    var el = section(id, title, caption, tall);
    var c = echarts.init(el, null, { renderer: "svg" });
    var o = Object.assign({}, BASE, option);
    c.setOption(o);
    return el;
  }

  function bars(name, data, stack, label) {
    return { name: name, type: "bar", stack: stack, data: data, label: { show: !!label, position: label || "inside" } };
  }

  var tip = { trigger: "axis", axisPointer: { type: "shadow" } };

  // 1. Visitors per day, new vs returning; a day so far (its data still arriving) is drawn faded
  // with a dashed outline.
  var partial = D.daily.complete.indexOf(false) >= 0;
  function sofar(values) {
    return values.map(function (v, i) {
      return D.daily.complete[i] ? v : { value: v, itemStyle: { opacity: 0.45, borderType: "dashed", borderColor: "#333", borderWidth: 1 } };
    });
  }
  chart("daily", "Visitors per day", "Distinct devices per local day, split into new customers (first day ever) and returning ones; the total is above each bar." +
    (partial ? " Faded, dashed bars: a day so far (data through " + D.daily.through + ")." : ""), {
    tooltip: tip,
    legend: { top: 0 },
    xAxis: { type: "category", data: D.daily.dates },
    yAxis: { type: "value", name: "visitors" },
    series: [
      bars("new", sofar(D.daily["new"]), "v", "inside"),
      bars("returning", sofar(D.daily.returning), "v", "inside"),
      { name: "visitors", type: "line", data: D.daily.visitors, symbolSize: 6, lineStyle: { opacity: 0 }, label: { show: true, position: "top" } }
    ]
  });

  // 2. Weekly rhythm: day × local hour.
  var hmax = Math.max.apply(null, [1].concat(D.hourly.cells.map(function (c) { return c[2]; })));
  chart("hourly", "Hourly curve of each day", "Distinct devices per local hour; each row is a day (a repeated hour on a DST day is its own column, marked ′).", {
    tooltip: { position: "top", formatter: function (p) { return D.dates[p.value[1]] + " " + D.hourly.hours[p.value[0]] + ": " + p.value[2] + " visitors"; } },
    grid: { left: 90, right: 30, top: 20, bottom: 80 },
    xAxis: { type: "category", data: D.hourly.hours, splitArea: { show: true } },
    yAxis: { type: "category", inverse: true, data: D.dates, splitArea: { show: true } },
    visualMap: { min: 0, max: hmax, calculable: false, orient: "horizontal", left: "center", bottom: 0 },
    series: [{ name: "visitors", type: "heatmap", data: D.hourly.cells, label: { show: D.hourly.cells.length <= 24 * 8, fontSize: 9 } }]
  });

  // 3. Peak hour per day.
  chart("peak", "Peak hour per day", "The local hour with the most distinct devices (ties: the earliest), with its visitors.", {
    tooltip: tip,
    xAxis: { type: "category", data: D.peak.dates },
    yAxis: { type: "value", name: "visitors in the peak hour" },
    series: [{
      name: "peak hour visitors", type: "bar", data: D.peak.visitors,
      label: { show: true, position: "top", formatter: function (p) { return D.peak.hour[p.dataIndex] + " · " + p.value; } }
    }]
  });

  // 4. Top shops of the last day (the strongest by name, the rest summed).
  chart("top", "Top shops on " + D.top.date, "Distinct visitors per shop on the last full day shown; shops past the strongest are summed in one bar.", {
    tooltip: tip,
    grid: { left: 230, right: 60, top: 10, bottom: 30 },
    xAxis: { type: "value" },
    yAxis: { type: "category", inverse: true, data: D.top.shops, axisLabel: { width: 210, overflow: "truncate" } },
    series: [{ name: "visitors", type: "bar", data: D.top.visitors, label: { show: true, position: "right" } }]
  }, true);

  // 5. Capture rate and median dwell per shop (scrolls when there are many shops).
  var many = D.engagement.shops.length > 20;
  chart("engagement", "Capture rate and median dwell per shop on " + D.engagement.date, "Capture rate = visitors (a qualifying visit) / devices detected; median dwell of qualifying visits in minutes. Most-detected shops first; drag the slider for more.", {
    tooltip: tip,
    legend: { top: 0 },
    grid: { left: 60, right: 60, top: 40, bottom: many ? 130 : 100 },
    xAxis: { type: "category", data: D.engagement.shops, axisLabel: { rotate: 40, width: 120, overflow: "truncate" } },
    yAxis: [{ type: "value", name: "capture %", max: 100 }, { type: "value", name: "median dwell (min)" }],
    dataZoom: many ? [{ type: "slider", startValue: 0, endValue: 19, bottom: 5 }, { type: "inside" }] : [],
    series: [
      { name: "capture rate %", type: "bar", data: D.engagement.capture.map(function (v) { return v === null ? null : Math.round(v * 1000) / 10; }), label: { show: !many, position: "top" } },
      { name: "median dwell (min)", type: "line", yAxisIndex: 1, data: D.engagement.median_dwell_min }
    ]
  });

  // 6. Dwell buckets of qualifying mall visits.
  chart("dwell", "How long visits last", "Qualifying mall visits per day by dwell bucket.", {
    tooltip: tip,
    legend: { top: 0 },
    xAxis: { type: "category", data: D.dwell.dates },
    yAxis: { type: "value", name: "visits" },
    series: D.dwell.buckets.map(function (b) { return bars(b[0], b[1], "d", "inside"); })
  });

  // 7. Loyalty split.
  chart("loyalty", "Loyalty of each day's visitors", "First time (first visitor-day ever), daily (5 of the last 7 days), weekly (2 of the last four weeks), occasional.", {
    tooltip: tip,
    legend: { top: 0 },
    xAxis: { type: "category", data: D.loyalty.dates },
    yAxis: { type: "value", name: "visitors" },
    series: D.loyalty.classes.map(function (c) { return bars(c[0], c[1], "l", "inside"); })
  });

  // 8. Shop-to-shop flows.
  var maxFlow = Math.max.apply(null, [1].concat(D.transitions.links.map(function (l) { return l.value; })));
  chart("flows", "Strongest shop-to-shop flows", "Consecutive qualifying shop visits within one mall visit, summed over the dates shown; the strongest flows, arrow width by count.", {
    tooltip: { formatter: function (p) { return p.dataType === "edge" ? p.data.source + " → " + p.data.target + ": " + p.data.value : p.name; } },
    series: [{
      type: "graph", layout: "circular", circular: { rotateLabel: true }, roam: true,
      label: { show: true, position: "right" }, edgeSymbol: ["none", "arrow"], edgeSymbolSize: 7,
      edgeLabel: { show: D.transitions.links.length <= 12, formatter: "{c}", fontSize: 9 },
      data: D.transitions.nodes.map(function (n) { return { name: n, symbolSize: 12 }; }),
      links: D.transitions.links.map(function (l) {
        return { source: l.source, target: l.target, value: l.value, lineStyle: { width: 1 + 6 * l.value / maxFlow, curveness: 0.2, opacity: 0.7 } };
      })
    }]
  }, true);

  // 9. Density of the last day, one slot at a time.
  var dmax = 1;
  D.density.cells.forEach(function (s) { s.forEach(function (c) { dmax = Math.max(dmax, c[2]); }); });
  var xs = [], ys = [];
  for (var x = D.density.x[0]; x <= D.density.x[1]; x++) xs.push(x);
  for (var y = D.density.y[0]; y <= D.density.y[1]; y++) ys.push(y);
  var cellIndex = function (c) { return [c[0] - D.density.x[0], c[1] - D.density.y[0], c[2]]; };
  // Open on the busiest slot (most device-cells; the earliest on a tie).
  var busiest = 0, best = -1;
  D.density.cells.forEach(function (s, i) {
    var n = s.reduce(function (a, c) { return a + c[2]; }, 0);
    if (n > best) { best = n; busiest = i; }
  });
  var densityOption = {
    baseOption: {
      timeline: { axisType: "category", data: D.density.slots, currentIndex: busiest, autoPlay: false, bottom: 0, label: { fontSize: 9 } },
      tooltip: { formatter: function (p) { return "cell (" + xs[p.value[0]] + ", " + ys[p.value[1]] + "): " + p.value[2] + " devices"; } },
      grid: { left: 60, right: 30, top: 20, bottom: 110 },
      xAxis: { type: "category", data: xs, name: "cell x" },
      yAxis: { type: "category", data: ys, name: "cell y" },
      visualMap: { min: 0, max: dmax, orient: "horizontal", left: "center", bottom: 50 },
      series: [{ name: "devices", type: "heatmap", label: { show: true, fontSize: 9 } }]
    },
    options: D.density.cells.map(function (s) { return { series: [{ data: s.map(cellIndex) }] }; })
  };
  chart("density", "Density on " + D.density.date, "Distinct devices with a position in each grid cell during a " + (D.density.slots.length ? "slot (it opens on the busiest; pick another on the timeline)" : "slot") + "; staff excluded.", densityOption, true);

  // 10. Data quality.
  var q = D.quality.rows;
  var el = chart("quality", "Data quality", "Rejected rows (share of rows read) and randomised-MAC rows (share of rows accepted) per partition date, with late rows and opening hours (" + D.quality.opening[0] + "–" + D.quality.opening[1] + " h) without a device below.", {
    tooltip: tip,
    legend: { top: 0 },
    xAxis: { type: "category", data: q.map(function (r) { return r.date; }) },
    yAxis: { type: "value", name: "%" },
    series: [
      { name: "rejected %", type: "bar", data: q.map(function (r) { return r.rejected_share === null ? null : Math.round(r.rejected_share * 10000) / 100; }), label: { show: true, position: "top" } },
      { name: "randomised %", type: "bar", data: q.map(function (r) { return r.randomized_share === null ? null : Math.round(r.randomized_share * 10000) / 100; }), label: { show: true, position: "top" } }
    ]
  });
  var t = document.createElement("table");
  t.className = "quality";
  var head = "<tr><th>date</th><th>rejected %</th><th>randomised %</th><th>late rows</th><th>empty open hours</th></tr>";
  var pct = function (v) { return v === null ? "–" : (Math.round(v * 10000) / 100).toString(); };
  t.innerHTML = head + q.map(function (r) {
    return "<tr><td>" + r.date + "</td><td>" + pct(r.rejected_share) + "</td><td>" + pct(r.randomized_share) + "</td><td>" + (r.late_rows === null ? "–" : r.late_rows) + "</td><td>" + r.empty_open_hours + "</td></tr>";
  }).join("");
  el.parentNode.appendChild(t);

  // Sales ([input] sales): amount and conversion per day, week over week, conversion per shop.
  if (D.sales) {
    var S = D.sales;
    chart("sales", "Sales and conversion per day", "The POS feed's sales per local day (refunds deducted; exact amounts as labels) and conversion = transactions / qualifying visitors.", {
      tooltip: tip,
      legend: { top: 0 },
      xAxis: { type: "category", data: S.dates },
      yAxis: [{ type: "value", name: "sales" }, { type: "value", name: "conversion %" }],
      series: [
        { name: "sales", type: "bar", data: S.amount, label: { show: true, position: "top", formatter: function (p) { return S.amount_text[p.dataIndex]; } } },
        { name: "conversion %", type: "line", yAxisIndex: 1, data: S.conversion, label: { show: true, position: "top" } }
      ]
    });
    chart("trend", "Week over week", "Change against the same weekday a week before, in % (no bar: no week-before data yet).", {
      tooltip: tip,
      legend: { top: 0 },
      xAxis: { type: "category", data: S.trend.dates },
      yAxis: { type: "value", name: "change %" },
      series: [
        bars("visitors", S.trend.visitors, null, "top"),
        bars("sales", S.trend.sales, null, "top")
      ]
    });
    chart("conversion", "Conversion per shop on " + S.shops.date, "Transactions / qualifying visitors of each shop (bars, %), and sales per visitor (line); best-selling shops first.", {
      tooltip: tip,
      legend: { top: 0 },
      grid: { left: 60, right: 60, top: 40, bottom: 100 },
      xAxis: { type: "category", data: S.shops.shops, axisLabel: { rotate: 40, width: 120, overflow: "truncate" } },
      yAxis: [{ type: "value", name: "conversion %" }, { type: "value", name: "sales per visitor" }],
      dataZoom: S.shops.shops.length > 20 ? [{ type: "slider", startValue: 0, endValue: 19, bottom: 5 }, { type: "inside" }] : [],
      series: [
        { name: "conversion %", type: "bar", data: S.shops.conversion, label: { show: S.shops.shops.length <= 20, position: "top" } },
        { name: "sales per visitor", type: "line", yAxisIndex: 1, data: S.shops.per_visitor }
      ]
    });
  }
})();
