//! `footfall report`: one self-contained HTML file. Checked for external references, for
//! determinism (byte-identical re-render and a golden file, the vendored chart library left
//! out of the comparison), and in a real headless Chromium with networking cut off: every
//! chart rendered as SVG with the tables' values in its text, and a screenshot that is not
//! blank. `.ci/run` installs Debian's chromium; without it `cargo test` reports the browser
//! tests as ignored (see build.rs), unless FOOTFALL_REQUIRE_BROWSER=1 (set by `.ci/run`), where
//! a missing browser fails them.

use std::path::{Path, PathBuf};

use crate::util::*;

const CHARTS: [&str; 13] = [
    "daily",
    "hourly",
    "peak",
    "top",
    "engagement",
    "dwell",
    "loyalty",
    "flows",
    "density",
    "quality",
    "sales",
    "trend",
    "conversion",
];

/// The golden mall run, and its report written to `r.html`.
fn golden_report() -> tempfile::TempDir {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    let o = ok(d, &["report", "--config", "footfall.toml", "--out", "r.html"]);
    assert!(o.stderr.contains("r.html"), "{}", o.explain());
    dir
}

/// Runs headless Chromium on a local file with every network request sent to a closed port.
fn browse(bin: &Path, work: &Path, page: &Path, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir_in(work).unwrap();
    std::process::Command::new(bin)
        .args(CHROMIUM_ARGS)
        .arg("--virtual-time-budget=5000")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("cannot start chromium")
}

/// The SVG text of the chart section `id` in a dumped DOM.
fn chart_text(dom: &str, id: &str) -> (bool, Vec<String>) {
    let start = dom.find(&format!("<div id=\"{id}\"")).unwrap_or_else(|| panic!("no chart {id}"));
    let end = dom[start..].find("</section>").map_or(dom.len(), |e| start + e);
    let body = &dom[start..end];
    let texts = body.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split('<').next()?.to_string()));
    (body.contains("<svg"), texts.collect())
}

#[test]
fn report_is_self_contained_and_deterministic() {
    let dir = golden_report();
    let d = dir.path();
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();

    // Nothing fetched from elsewhere: no external src/href/url(), no <link>.
    let lower = html.to_lowercase();
    for bad in ["src=\"http", "src='http", "href=\"http", "href='http", "url(http", "url(\"http", "<link", "@import"] {
        assert!(!lower.contains(bad), "the report references something external: {bad}");
    }
    let echarts = std::fs::read_to_string(root().join("src/report/echarts.min.js")).unwrap();
    assert!(html.contains(&echarts), "the chart library is inlined whole");

    // Deterministic: a second render is byte-identical, and so is the golden one.
    ok(d, &["report", "--config", "footfall.toml", "--out", "r2.html"]);
    assert!(std::fs::read(d.join("r2.html")).unwrap() == html.as_bytes(), "two renders differ");
    let got = html.replace(&echarts, "/* echarts.min.js */");
    let golden = root().join("tests/golden/report.html");
    if std::env::var("FOOTFALL_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("tests/golden/report.html (FOOTFALL_UPDATE_GOLDEN=1 writes it)");
    assert!(got == want, "report differs from tests/golden/report.html (FOOTFALL_UPDATE_GOLDEN=1 rewrites it)");
}

#[test]
#[cfg_attr(not(has_browser), ignore = "needs chromium: .ci/run installs it")]
fn report_renders_every_chart_with_the_tables_values() {
    let dir = golden_report();
    let d = dir.path();
    let bin = PathBuf::from(chromium());
    let page = d.join("r.html");
    let dump = browse(&bin, d, &page, &["--dump-dom"]);
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dom = String::from_utf8_lossy(&dump.stdout);
    for id in CHARTS {
        let (svg, texts) = chart_text(&dom, id);
        assert!(svg && !texts.is_empty(), "chart {id} did not render");
    }
    // The tables' values are in the rendered charts.
    let csv = |t: &str| ok(d, &["show", t, "--config", "footfall.toml", "--format", "csv"]).stdout;
    let (_, daily) = chart_text(&dom, "daily");
    for row in csv("mall_daily_new_customers").lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        assert!(daily.iter().any(|t| t == f[0]), "date {} not on the daily chart: {daily:?}", f[0]);
        assert!(daily.iter().any(|t| t == f[1]), "visitors {} of {} not on the daily chart: {daily:?}", f[1], f[0]);
    }
    // The golden mall's last local day holds only spill-over past midnight: a day so far.
    assert!(dom.contains("Faded, dashed bars: a day so far (data through 2026-03-30 "), "no 'so far' caption");
    let (_, peak) = chart_text(&dom, "peak");
    for row in csv("peak_hour_daily").lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        // hour_start is "YYYY-MM-DD HH:MM:SS+ZZ:ZZ"-like; the label is "HH:MM · visitors".
        let hhmm = &f[1][11..16];
        let label = format!("{hhmm} · {}", f[2]);
        assert!(peak.contains(&label), "{label} not on the peak chart: {peak:?}");
    }
    let (_, flows) = chart_text(&dom, "flows");
    for row in csv("shop_transitions_daily").lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        assert!(flows.iter().any(|t| t == f[1]) && flows.iter().any(|t| t == f[2]), "{row} not on the flows chart");
    }
    // Stacked per-date charts: every non-zero count is labelled.
    let nonzero = |t: &str, cols: &[&str]| -> Vec<String> {
        let text = csv(t);
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let idx: Vec<usize> = cols.iter().map(|c| header.iter().position(|h| h == c).unwrap()).collect();
        let mut out = Vec::new();
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            out.extend(idx.iter().map(|i| f[*i].to_string()).filter(|v| v != "0"));
        }
        out
    };
    let (_, loyalty) = chart_text(&dom, "loyalty");
    for v in nonzero("mall_daily_loyalty", &["first_time", "daily", "weekly", "occasional"]) {
        assert!(loyalty.contains(&v), "loyalty count {v} not on the chart: {loyalty:?}");
    }
    let (_, dwell) = chart_text(&dom, "dwell");
    for v in
        nonzero("mall_daily_engagement", &["dwell_lt_5m", "dwell_5_20m", "dwell_20_60m", "dwell_1_6h", "dwell_6h_plus"])
    {
        assert!(dwell.contains(&v), "dwell bucket count {v} not on the chart: {dwell:?}");
    }
    let (_, hourly) = chart_text(&dom, "hourly");
    for row in csv("mall_hourly_visitors").lines().skip(1) {
        let v = row.rsplit(',').next().unwrap().to_string();
        assert!(hourly.contains(&v), "hourly visitors {v} not on the heatmap");
    }
    // Per-shop charts show the day their title names.
    let day = dom.split("Top shops on ").nth(1).map(|t| t[..10].to_string()).expect("top shops title");
    let shops =
        ok(d, &["show", "shop_daily_engagement", "--config", "footfall.toml", "--date", &day, "--format", "csv"])
            .stdout;
    let (_, top) = chart_text(&dom, "top");
    let (_, eng) = chart_text(&dom, "engagement");
    for row in shops.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        assert!(top.contains(&format!("{} ({})", f[2], f[1])), "shop {} not on the top chart: {top:?}", f[1]);
        let capture = format!("{}", (f[6].parse::<f64>().unwrap() * 1000.0).round() / 10.0);
        assert!(eng.contains(&capture), "capture {capture} % of {} not on the chart: {eng:?}", f[1]);
    }
    let visitors =
        ok(d, &["show", "shop_daily_visitors", "--config", "footfall.toml", "--date", &day, "--format", "csv"]).stdout;
    for row in visitors.lines().skip(1) {
        let v = row.rsplit(',').next().unwrap().to_string();
        assert!(top.contains(&v), "{v} visitors not on the top chart: {top:?}");
    }
    // Sales: each day's exact amount, and each shop's conversion on the day the title names.
    let (_, sales) = chart_text(&dom, "sales");
    for row in csv("mall_daily_sales").lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        assert!(sales.iter().any(|t| t == f[2]), "sales {} of {} not on the chart: {sales:?}", f[2], f[0]);
    }
    let (_, conversion) = chart_text(&dom, "conversion");
    let sday = dom.split("Conversion per shop on ").nth(1).map(|t| t[..10].to_string()).expect("conversion title");
    let shop_sales =
        ok(d, &["show", "shop_daily_sales", "--config", "footfall.toml", "--date", &sday, "--format", "csv"]).stdout;
    for row in shop_sales.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        if let Ok(c) = f[6].parse::<f64>() {
            let pct = format!("{}", (c * 1000.0).round() / 10.0);
            assert!(conversion.contains(&pct), "conversion {pct} % of {} not on the chart: {conversion:?}", f[1]);
        }
    }
    let (_, density) = chart_text(&dom, "density");
    assert!(density.iter().any(|t| t.parse::<i64>().is_ok_and(|n| n > 0)), "no device count on the density grid");
    let (_, quality) = chart_text(&dom, "quality");
    let dq = ok(
        d,
        &[
            "sql",
            "SELECT date, SUM(rows_rejected) AS r, SUM(rows_read) AS n FROM data_quality WHERE source = 'probes' GROUP BY date",
            "--config",
            "footfall.toml",
            "--format",
            "csv",
        ],
    )
    .stdout;
    for row in dq.lines().skip(1) {
        let f: Vec<f64> = row.split(',').skip(1).map(|v| v.parse().unwrap()).collect();
        let pct = format!("{}", (f[0] / f[1] * 10000.0).round() / 100.0);
        if f[0] > 0.0 {
            assert!(quality.contains(&pct), "rejected {pct} % not on the quality chart: {quality:?}");
        }
    }
    assert!(dom.contains("<table class=\"quality\">"), "no data-quality table");

    // Not blank: a screenshot of the report is far richer than one of an empty page.
    std::fs::write(d.join("blank.html"), "<!doctype html><html><body></body></html>").unwrap();
    let shot = |page: &Path, png: &str| {
        let o = browse(&bin, d, page, &["--window-size=1240,2400", &format!("--screenshot={}", d.join(png).display())]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::metadata(d.join(png)).unwrap().len()
    };
    let (report, blank) = (shot(&page, "report.png"), shot(&d.join("blank.html"), "blank.png"));
    assert!(report > 5 * blank, "screenshot looks blank: {report} bytes vs {blank} for an empty page");
}

#[test]
#[cfg_attr(not(has_browser), ignore = "needs chromium: .ci/run installs it")]
fn report_stays_readable_with_200_shops_and_cjk_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["generate", "--out", "m", "--days", "2", "--visitors", "3000", "--shops", "200", "--seed", "9"]);
    // The original users' shop names are Chinese.
    let shops = std::fs::read_to_string(d.join("m/dims/area_shop.csv")).unwrap();
    let mut lines: Vec<String> = shops.lines().map(str::to_string).collect();
    for l in lines.iter_mut().skip(1) {
        let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
        f[2] = format!("购物中心商店{}", &f[1]);
        *l = f.join(",");
    }
    std::fs::write(d.join("m/dims/area_shop.csv"), lines.join("\n") + "\n").unwrap();
    ok(d, &["run", "--config", "m/footfall.toml"]);
    ok(d, &["report", "--config", "m/footfall.toml", "--out", "r.html"]);
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert!(html.contains("购物中心商店"), "CJK names are kept as text");
    let bin = PathBuf::from(chromium());
    let dump = browse(&bin, d, &d.join("r.html"), &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dump.stdout);
    // Top shops: the strongest by name plus one "others" bar, not 200 bars.
    let (_, top) = chart_text(&dom, "top");
    let named = top.iter().filter(|t| t.starts_with("购物中心商店")).count();
    assert!((1..=15).contains(&named), "{named} named shops on the top chart: {top:?}");
    assert!(top.iter().any(|t| t.contains("other shops (sum)")), "no 'others' bar: {top:?}");
    // Engagement scrolls: a slider, and only a window of the shops drawn.
    let (_, eng) = chart_text(&dom, "engagement");
    let drawn = eng.iter().filter(|t| t.starts_with("购物中心商店")).count();
    assert!((1..=20).contains(&drawn), "{drawn} shops drawn at once on the engagement chart");
}
