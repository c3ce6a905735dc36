//! `footfall serve` as a real server on 127.0.0.1 (port 0), spoken to over raw TCP so bad
//! requests can be sent as they are, and loaded in headless Chromium (every other request sent
//! to a closed proxy).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::util::*;

/// A running `footfall serve`; killed when dropped.
struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(d: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
    let mut child = Command::new(bin())
        .current_dir(d)
        .args(["serve", "--config", "footfall.toml", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).map(|a| a.trim().trim_end_matches('/').to_string());
    Serve { addr: addr.unwrap_or_else(|| panic!("no address in {line:?}")), child }
}

/// Sends `head` (request line and headers, without the blank line) and returns (status, body).
fn raw(addr: &str, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    s.write_all(format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get(addr: &str, path: &str) -> (u16, String) {
    raw(addr, &format!("GET {path} HTTP/1.1"))
}

/// No MAC-shaped text (six hex pairs) and no 32-hex pseudonym.
fn assert_no_device_ids(what: &str, body: &str) {
    let b = body.as_bytes();
    let hex = |c: u8| c.is_ascii_hexdigit();
    for i in 0..b.len() {
        let mac = i + 17 <= b.len()
            && (0..6).all(|k| hex(b[i + 3 * k]) && hex(b[i + 3 * k + 1]))
            && (0..5).all(|k| matches!(b[i + 3 * k + 2], b':' | b'-'));
        let pseudo = i + 32 <= b.len() && b[i..i + 32].iter().all(|c| hex(*c) && !c.is_ascii_uppercase());
        assert!(!mac && !pseudo, "{what}: a device id at {i}: {}", &body[i..(i + 32).min(body.len())]);
    }
}

/// A published table of one date as CSV lines.
fn rows(d: &Path, table: &str, date: &str) -> Vec<Vec<String>> {
    let o = ok(d, &["show", table, "--config", "footfall.toml", "--date", date, "--format", "csv"]).stdout;
    o.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

#[test]
fn the_api_serves_the_tables_figures_and_refuses_bad_requests() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let s = serve(d, &[], &[]);
    let (code, body) = get(&s.addr, "/api/live");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    // The golden mall's newest data is 2026-03-30 01:22:31 CEST: that is "today", long stale.
    assert_eq!((v["date"].as_str(), v["stale"].as_bool()), (Some("2026-03-30"), Some(true)), "{v}");
    assert_eq!(v["newest"], "2026-03-30 01:22:31 CEST");
    // Occupancy now = the shops' occupancy summed in the last slot; the hourly curve and top
    // shops = the tables of that date.
    let occ = rows(d, "occupancy_5min", "2026-03-30");
    let last = occ.iter().map(|r| r[1].clone()).max().unwrap();
    let now: i64 = occ.iter().filter(|r| r[1] == last).map(|r| r[3].parse::<i64>().unwrap()).sum();
    assert_eq!(v["occupancy"]["now"], now, "{v}");
    let hourly: Vec<i64> =
        rows(d, "mall_hourly_visitors", "2026-03-30").iter().map(|r| r[2].parse().unwrap()).collect();
    assert_eq!(v["hourly"]["visitors"], serde_json::json!(hourly));
    let shops = rows(d, "shop_daily_visitors", "2026-03-30");
    let total: i64 = shops.iter().map(|r| r[3].parse::<i64>().unwrap()).sum();
    let shown: i64 = v["top"]["visitors"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).sum();
    assert_eq!(shown, total, "every shop of the date (fewer than ten) is on the panel: {v}");
    // Today so far: the devices the date's table counts.
    let visitors = rows(d, "mall_daily_visitors", "2026-03-30");
    assert_eq!(v["today"]["so_far"].as_i64().unwrap().to_string(), visitors[0][1]);
    assert_no_device_ids("/api/live", &body);

    let (code, page) = get(&s.addr, "/");
    assert_eq!(code, 200);
    assert!(page.contains("<title>footfall live</title>"));
    let echarts = std::fs::read_to_string(root().join("src/report/echarts.min.js")).unwrap();
    assert_no_device_ids("/", &page.replace(&echarts, ""));
    for (head, want) in [
        ("POST / HTTP/1.1\r\nContent-Length: 0", 405),
        ("PUT /api/live HTTP/1.1\r\nContent-Length: 0", 405),
        ("DELETE / HTTP/1.1", 405),
        ("GET /../etc/passwd HTTP/1.1", 404),
        ("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1", 404),
        ("GET /api/../../Cargo.toml HTTP/1.1", 404),
        ("GET /api/nope HTTP/1.1", 404),
        ("GET /api/live?date=yesterday HTTP/1.1", 400),
        ("GET /?%zz HTTP/1.1", 400),
    ] {
        let (code, body) = raw(&s.addr, head);
        assert_eq!(code, want, "{head}: {body}");
        assert_no_device_ids(head, &body);
    }
    // An oversized header is refused; the server keeps serving.
    let (code, _) = raw(&s.addr, &format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(64 * 1024)));
    assert!((400..500).contains(&code) || code == 0, "oversized header: {code}");
    let (code, _) = raw(&s.addr, "HEAD /api/live HTTP/1.1");
    assert_eq!(code, 200);
    assert_eq!(get(&s.addr, "/api/live").0, 200, "still serving");
}

#[test]
fn off_loopback_needs_a_token_and_a_token_is_checked() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let o = expect(d, &["serve", "--config", "footfall.toml", "--listen", "0.0.0.0:0"], 2);
    assert!(o.stderr.contains("needs a token"), "{}", o.explain());
    let o = expect(d, &["serve", "--config", "footfall.toml", "--token-env", "FOOTFALL_TEST_UNSET_TOKEN"], 2);
    assert!(o.stderr.contains("FOOTFALL_TEST_UNSET_TOKEN"), "{}", o.explain());

    let token = "t0k-3n_secret";
    let s = serve(d, &["--token-env", "FF_TOKEN"], &[("FF_TOKEN", token)]);
    assert_eq!(get(&s.addr, "/api/live").0, 401);
    assert_eq!(raw(&s.addr, "GET /api/live HTTP/1.1\r\nAuthorization: Bearer wrong").0, 401);
    assert_eq!(get(&s.addr, "/api/live?token=t0k-3n_secreT").0, 401);
    assert_eq!(raw(&s.addr, &format!("GET /api/live HTTP/1.1\r\nAuthorization: Bearer {token}")).0, 200);
    // ?token= once sets a cookie, which then suffices.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(format!("GET /?token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{}", &out[..out.len().min(200)]);
    let cookie = out.lines().find_map(|l| l.strip_prefix("set-cookie: ")).expect("a cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(raw(&s.addr, &format!("GET /api/live HTTP/1.1\r\nCookie: {pair}")).0, 200);
}

#[test]
#[cfg_attr(not(has_browser), ignore = "needs chromium: .ci/run installs it")]
fn the_page_renders_every_panel_with_the_api_figures() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let s = serve(d, &[], &[]);
    let v: serde_json::Value = serde_json::from_str(&get(&s.addr, "/api/live").1).unwrap();
    let bin = std::env::var("FOOTFALL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = tempfile::tempdir_in(d).unwrap();
    let o = Command::new(bin)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--no-first-run", "--proxy-server=127.0.0.1:9"])
        .args(["--virtual-time-budget=8000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{}/", s.addr))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dom = String::from_utf8_lossy(&o.stdout);
    let text_of = |id: &str| -> String {
        let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
        dom[start..].split_once('>').unwrap().1.split('<').next().unwrap().to_string()
    };
    assert_eq!(text_of("today"), v["today"]["so_far"].to_string());
    assert_eq!(text_of("now"), v["occupancy"]["now"].to_string());
    assert!(text_of("fresh").contains("newest data 2026-03-30 01:22:31 CEST") && text_of("fresh").contains("STALE"));
    for id in ["occupancy", "hourly", "top", "density"] {
        let start = dom.find(&format!("<div class=\"chart\" id=\"{id}\"")).unwrap_or_else(|| panic!("no chart {id}"));
        let end = dom[start..].find("</section>").map_or(dom.len(), |e| start + e);
        assert!(dom[start..end].contains("<svg"), "chart {id} did not render");
    }
    // The top shops' names are drawn.
    let top = v["top"]["shops"][0].as_str().unwrap();
    assert!(dom.contains(top), "{top} not on the page");
}

#[test]
fn with_update_every_the_server_publishes_new_files_and_serves_their_figures() {
    let dir = golden_mall();
    let d = dir.path();
    // The last hours of the golden data arrive while the server runs.
    let late: Vec<std::path::PathBuf> = golden_files()
        .into_iter()
        .filter(|f| {
            f.to_string_lossy().contains("date=2026-03-29/hour=2") || f.to_string_lossy().contains("date=2026-03-30")
        })
        .collect();
    assert!(!late.is_empty());
    let held = d.join("held");
    for f in &late {
        std::fs::create_dir_all(held.join(f).parent().unwrap()).unwrap();
        std::fs::rename(d.join("probes").join(f), held.join(f)).unwrap();
    }
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let s = serve(d, &["--update-every", "1s"], &[]);
    let live = || -> serde_json::Value { serde_json::from_str(&get(&s.addr, "/api/live").1).unwrap() };
    let before = live();
    for f in &late {
        std::fs::rename(held.join(f), d.join("probes").join(f)).unwrap();
    }
    // Within a few updates the newest data moves to the late files' and the figures follow.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let after = loop {
        let v = live();
        if v["newest"] == "2026-03-30 01:22:31 CEST" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no update served: {v}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert_ne!(before["newest"], after["newest"]);
    assert_eq!(after["date"], "2026-03-30");
    let visitors = rows(d, "mall_daily_visitors", "2026-03-30");
    assert_eq!(after["today"]["so_far"].as_i64().unwrap().to_string(), visitors[0][1]);
    let occ = rows(d, "occupancy_5min", "2026-03-30");
    let last = occ.iter().map(|r| r[1].clone()).max().unwrap();
    let now: i64 = occ.iter().filter(|r| r[1] == last).map(|r| r[3].parse::<i64>().unwrap()).sum();
    assert_eq!(after["occupancy"]["now"], now);
    assert!(after["update_error"].is_null(), "{after}");
}
