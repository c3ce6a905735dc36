//! `footfall serve` as a real server on 127.0.0.1 (port 0), spoken to over raw TCP so bad
//! requests can be sent as they are, and loaded in headless Chromium (every other request sent
//! to a closed proxy): once as a DOM dump, once driven over the DevTools protocol to watch the
//! running page follow new data and a server restart without reloading.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

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
    serve_at(d, "127.0.0.1:0", args, env)
}

fn serve_at(d: &Path, listen: &str, args: &[&str], env: &[(&str, &str)]) -> Serve {
    let mut child = Command::new(bin())
        .current_dir(d)
        .args(["serve", "--config", "footfall.toml", "--listen", listen])
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
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
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

fn live(addr: &str) -> serde_json::Value {
    serde_json::from_str(&get(addr, "/api/live").1).unwrap()
}

/// The golden mall's newest record.
const NEWEST: &str = "2026-03-30 01:22:31 CEST";

/// Moves the golden mall's last hours aside (to `held/`), to arrive while a server runs.
fn hold_late_files(d: &Path) -> Vec<PathBuf> {
    let late: Vec<PathBuf> = golden_files()
        .into_iter()
        .filter(|f| {
            f.to_string_lossy().contains("date=2026-03-29/hour=2") || f.to_string_lossy().contains("date=2026-03-30")
        })
        .collect();
    assert!(!late.is_empty());
    for f in &late {
        std::fs::create_dir_all(d.join("held").join(f).parent().unwrap()).unwrap();
        std::fs::rename(d.join("probes").join(f), d.join("held").join(f)).unwrap();
    }
    late
}

fn release(d: &Path, late: &[PathBuf]) {
    for f in late {
        std::fs::rename(d.join("held").join(f), d.join("probes").join(f)).unwrap();
    }
}

/// Polls `f` until it gives a value (60 s at most).
fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
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

/// The page's DOM after 8 s of (virtual) time in headless Chromium.
fn dump_dom(addr: &str, scratch: &Path) -> String {
    let profile = tempfile::tempdir_in(scratch).unwrap();
    let o = Command::new(chromium())
        .args(CHROMIUM_ARGS)
        .args(["--virtual-time-budget=8000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{addr}/"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
#[cfg_attr(not(has_browser), ignore = "needs chromium: .ci/run installs it")]
fn the_page_renders_every_panel_with_the_api_figures() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let s = serve(d, &[], &[]);
    let v: serde_json::Value = serde_json::from_str(&get(&s.addr, "/api/live").1).unwrap();
    let dom = dump_dom(&s.addr, d);
    let text_of = |id: &str| -> String {
        let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
        dom[start..].split_once('>').unwrap().1.split('<').next().unwrap().to_string()
    };
    assert_eq!(text_of("today"), v["today"]["so_far"].to_string());
    assert_eq!(text_of("now"), v["occupancy"]["now"].to_string());
    assert!(text_of("fresh").contains(&format!("newest data {NEWEST}")) && text_of("fresh").contains("STALE"));
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
    let late = hold_late_files(d);
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let s = serve(d, &["--update-every", "1s"], &[]);
    let api = || live(&s.addr);
    let before = api();
    release(d, &late);
    // Within a few updates the newest data moves to the late files' and the figures follow.
    let after = wait_until("the late files served", || Some(api()).filter(|v| v["newest"] == NEWEST));
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

/// Headless Chromium driven over the DevTools protocol on a pipe: Chromium reads commands on fd 3
/// and answers on fd 4 (NUL-terminated JSON); the shell moves our stdin/stdout there.
struct Browser {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
    next: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn open(url: &str, scratch: &Path) -> Browser {
        let profile = tempfile::tempdir_in(scratch).unwrap();
        let mut child = Command::new("sh")
            .args(["-c", "exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>/dev/null", &chromium()])
            .args(CHROMIUM_ARGS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (to, from) = (child.stdin.take().unwrap(), BufReader::new(child.stdout.take().unwrap()));
        let mut b = Browser { child, to, from, next: 0, session: None, _profile: profile };
        let target = b.call("Target.createTarget", serde_json::json!({ "url": url }));
        let attached =
            b.call("Target.attachToTarget", serde_json::json!({ "targetId": target["targetId"], "flatten": true }));
        b.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        b
    }

    /// Sends one command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next += 1;
        let mut msg = serde_json::json!({ "id": self.next, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = s.clone().into();
        }
        self.to.write_all(format!("{msg}\0").as_bytes()).unwrap();
        self.to.flush().unwrap();
        loop {
            let mut buf = Vec::new();
            self.from.read_until(0, &mut buf).unwrap();
            assert!(buf.pop() == Some(0), "chromium closed the pipe during {method}");
            let reply: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            if reply["id"] == self.next {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates `js` in the page; its value as JSON.
    fn eval(&mut self, js: &str) -> serde_json::Value {
        let r = self.call("Runtime.evaluate", serde_json::json!({ "expression": js, "returnByValue": true }));
        r["result"]["value"].clone()
    }
}

#[test]
#[cfg_attr(not(has_browser), ignore = "needs chromium: .ci/run installs it")]
fn the_open_page_follows_new_data_and_a_server_restart_without_reloading() {
    let dir = golden_mall();
    let d = dir.path();
    let late = hold_late_files(d);
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let s = serve(d, &["--update-every", "1s"], &[]);
    let before = live(&s.addr);
    let mut b = Browser::open(&format!("http://{}/", s.addr), d);
    // What the page shows, and a mark a reload would wipe.
    let read = |b: &mut Browser| -> Vec<String> {
        let v = b.eval(
            "['today', 'today-vs', 'now', 'fresh'].map(id => (document.getElementById(id) || {}).textContent || '')\
             .concat([String(window.footfallTestMark)])",
        );
        v.as_array().map(|a| a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect()).unwrap_or_default()
    };
    let shown = wait_until("the first figures", || Some(read(&mut b)).filter(|p| p[3].starts_with("as of")));
    assert_eq!(shown[0], before["today"]["so_far"].to_string(), "{shown:?}");
    b.eval("window.footfallTestMark = 'the same page'");

    release(d, &late);
    let shown = wait_until("the page to show the late files", || {
        Some(read(&mut b)).filter(|p| p[3].contains(&format!("newest data {NEWEST}")))
    });
    let after = live(&s.addr);
    assert_eq!(after["newest"], NEWEST);
    assert_eq!(shown[0], after["today"]["so_far"].to_string(), "{shown:?} vs {after}");
    assert_eq!(shown[2], after["occupancy"]["now"].to_string(), "{shown:?} vs {after}");
    assert!(shown[1].starts_with("2026-03-30:") && before["date"] != after["date"], "{shown:?}");
    assert_eq!(shown[4], "the same page", "the page was reloaded");

    // The server goes away: the page says so and keeps its figures; back, it carries on.
    let addr = s.addr.clone();
    drop(s);
    let down = wait_until("the page to notice", || Some(read(&mut b)).filter(|p| p[3].contains("server unreachable")));
    assert_eq!(down[0], shown[0]);
    let _s = serve_at(d, &addr, &[], &[]);
    let back = wait_until("the page to recover", || Some(read(&mut b)).filter(|p| p[3].starts_with("as of")));
    assert_eq!((back[0].as_str(), back[4].as_str()), (shown[0].as_str(), "the same page"));
}

#[test]
#[cfg_attr(not(has_browser), ignore = "needs chromium: .ci/run installs it")]
fn a_broken_table_and_a_failed_update_show_on_the_page_and_the_rest_is_served() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    std::fs::write(d.join("out/occupancy_5min/date=2026-03-30/part-0.parquet"), "not parquet").unwrap();
    std::fs::write(d.join("probes/date=2026-03-29/hour=19/bad.parquet"), "garbage").unwrap();
    let s = serve(d, &["--update-every", "1s"], &[]);
    let v = wait_until("the failed update", || Some(live(&s.addr)).filter(|v| !v["update_error"].is_null()));
    assert!(v["update_error"].as_str().unwrap().contains("bad.parquet: not a Parquet file"), "{v}");
    let broken = v["occupancy"]["error"].as_str().unwrap_or_else(|| panic!("no error on the panel: {v}"));
    assert!(broken.contains("occupancy_5min/date=2026-03-30/part-0.parquet"), "{broken}");
    // The other panels: the last good tables.
    let hourly: Vec<i64> =
        rows(d, "mall_hourly_visitors", "2026-03-30").iter().map(|r| r[2].parse().unwrap()).collect();
    assert_eq!(v["hourly"]["visitors"], serde_json::json!(hourly));
    assert_eq!(v["newest"], NEWEST);

    let dom = dump_dom(&s.addr, d);
    let panel = |id: &str| {
        let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
        dom[start..start + dom[start..].find("</section>").unwrap()].to_string()
    };
    assert!(panel("p-occupancy").contains("class=\"error\"") && panel("p-occupancy").contains("part-0.parquet"));
    assert!(panel("p-hourly").contains("<svg") && !panel("p-hourly").contains("class=\"error\""));
    let fresh = dom[dom.find("id=\"fresh\"").unwrap()..].split('<').next().unwrap().to_string();
    assert!(fresh.contains("update failed: ") && fresh.contains("bad.parquet"), "{fresh}");
}
