//! `footfall export` against real servers on 127.0.0.1: PostgreSQL (Debian's, `initdb` into
//! a temp dir and `pg_ctl`, as the `postgres` user when the tests run as root) and MariaDB
//! (`mariadb-install-db` + `mariadbd`). Each test starts its own servers. Without them these
//! tests are reported by `cargo test` as ignored (see build.rs), unless FOOTFALL_REQUIRE_DB=1
//! (set by `.ci/run`), where a missing server fails them.
//!
//! Database contents are compared with the published Parquet tables row for row: each side is
//! read through its own client (tokio-postgres / mysql_async typed rows here; polars
//! `AnyValue`s there) into one canonical text per row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, NaiveDate, Utc};
use footfall::schema::TableSchema;
use polars::prelude::*;

use crate::util::*;

const PASSWORD: &str = "pw-Secret-7731";

fn missing(what: &str) -> ! {
    panic!("{what} is not installed (run .ci/run, or apt-get install postgresql mariadb-server, then touch build.rs)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a server tool, as `postgres` when root (PostgreSQL refuses to run as root).
fn sh(as_postgres: bool, prog: &Path, args: &[&str]) {
    let mut c = if as_postgres && is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(prog);
        c
    } else {
        Command::new(prog)
    };
    let o = c.args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{}: {e}", prog.display()));
    assert!(
        o.status.success(),
        "{} {args:?}: {}{}",
        prog.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn wait_port(port: u16) {
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed().as_secs() < 60, "server on port {port} did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub struct Pg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Pg {
    fn start() -> Pg {
        let bin = match std::env::var("FOOTFALL_PG_BIN") {
            Ok(p) => PathBuf::from(p),
            Err(_) => {
                let mut v: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                    .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
                    .unwrap_or_default();
                v.sort();
                v.pop().unwrap_or_default()
            }
        };
        if !bin.join("initdb").exists() {
            missing("PostgreSQL (initdb)");
        }
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            sh(false, Path::new("chown"), &["-R", "postgres", dir.path().to_str().unwrap()]);
        }
        let pw = dir.path().join("pw");
        std::fs::write(&pw, PASSWORD).unwrap();
        if is_root() {
            sh(false, Path::new("chown"), &["postgres", pw.to_str().unwrap()]);
        }
        let data = dir.path().join("data");
        sh(
            true,
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "footfall",
                "--auth=scram-sha-256",
                "--pwfile",
                pw.to_str().unwrap(),
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        let pg = Pg { bin, dir, port: free_port() };
        pg.up();
        pg
    }

    fn up(&self) {
        let d = self.dir.path();
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, d.display());
        let log = d.join("log");
        sh(
            true,
            &self.bin.join("pg_ctl"),
            &["-D", d.join("data").to_str().unwrap(), "-o", &opts, "-l", log.to_str().unwrap(), "-w", "start"],
        );
        wait_port(self.port);
    }

    fn down(&self) {
        sh(
            true,
            &self.bin.join("pg_ctl"),
            &["-D", self.dir.path().join("data").to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// The URL without password (tests pass it in PGPASSWORD unless they test the URL's).
    pub fn url(&self) -> String {
        format!("postgresql://footfall@127.0.0.1:{}/postgres", self.port)
    }

    fn client(&self) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = rt.block_on(async {
            let url = format!("postgresql://footfall:{PASSWORD}@127.0.0.1:{}/postgres", self.port);
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c
        });
        (rt, client)
    }

    /// Every row of `schema.table`, canonical and sorted.
    pub fn rows(&self, schema: &str, t: &TableSchema) -> Vec<String> {
        let (rt, c) = self.client();
        // NUMERIC as its exact text.
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| if c.ty == "decimal" { format!("\"{}\"::text", c.name) } else { format!("\"{}\"", c.name) })
            .collect();
        let sql = format!("SELECT {} FROM \"{schema}\".\"{}\"", cols.join(", "), t.name);
        let rows = rt.block_on(c.query(&sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e:#}"));
        canonical(rows.len(), t, |i, j, col| {
            let r = &rows[i];
            match col.ty.as_str() {
                "boolean" => show(r.get::<_, Option<bool>>(j)),
                "int32" => show(r.get::<_, Option<i32>>(j).map(i64::from)),
                "int64" => show(r.get::<_, Option<i64>>(j)),
                "float64" => show(r.get::<_, Option<f64>>(j).map(f64::to_bits)),
                "date" => show(r.get::<_, Option<NaiveDate>>(j)),
                "timestamp" => show(r.get::<_, Option<DateTime<Utc>>>(j).map(|t| t.timestamp_micros())),
                _ => show(r.get::<_, Option<String>>(j)),
            }
        })
    }

    fn query_one(&self, sql: &str) -> i64 {
        let (rt, c) = self.client();
        rt.block_on(c.query_one(sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e:#}")).get(0)
    }

    fn execute(&self, sql: &str) {
        let (rt, c) = self.client();
        rt.block_on(c.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e:#}"));
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new(if is_root() { "runuser" } else { "true" })
            .args(if is_root() { vec!["-u", "postgres", "--"] } else { vec![] })
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

pub struct My {
    dir: tempfile::TempDir,
    child: std::process::Child,
    pub port: u16,
}

impl My {
    fn start() -> My {
        let server = PathBuf::from(std::env::var("FOOTFALL_MARIADB_BIN").unwrap_or("/usr/sbin/mariadbd".into()));
        if !server.exists() {
            missing("MariaDB (mariadbd)");
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let user = if is_root() { "--user=root" } else { "--no-defaults" };
        sh(
            false,
            Path::new("mariadb-install-db"),
            &[
                "--no-defaults",
                &format!("--datadir={}", data.display()),
                user,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        );
        let port = free_port();
        let sock = dir.path().join("sock");
        let child = Command::new(&server)
            .args([
                "--no-defaults".to_string(),
                format!("--datadir={}", data.display()),
                user.to_string(),
                format!("--port={port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={}", sock.display()),
                format!("--pid-file={}", dir.path().join("pid").display()),
                "--skip-name-resolve".into(),
                "--innodb-flush-log-at-trx-commit=0".into(),
                format!("--log-error={}", dir.path().join("err.log").display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start mariadbd");
        wait_port(port);
        let t0 = std::time::Instant::now();
        while !sock.exists() {
            assert!(t0.elapsed().as_secs() < 30);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        sh(
            false,
            Path::new("mariadb"),
            &[
                "--no-defaults",
                "-S",
                sock.to_str().unwrap(),
                "-u",
                "root",
                "-e",
                &format!("CREATE USER 'footfall'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON *.* TO 'footfall'@'%'; CREATE DATABASE mall;"),
            ],
        );
        My { dir, child, port }
    }

    pub fn url(&self) -> String {
        format!("mysql://footfall@127.0.0.1:{}/mall", self.port)
    }

    pub fn rows(&self, db: &str, t: &TableSchema) -> Vec<String> {
        use mysql_async::prelude::*;
        use mysql_async::Value;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let url = format!("mysql://footfall:{PASSWORD}@127.0.0.1:{}/mall", self.port);
        let rows: Vec<mysql_async::Row> = rt.block_on(async {
            let mut c = mysql_async::Conn::from_url(url).await.unwrap();
            // Binary protocol (a prepared statement): typed values.
            let r = c.exec(format!("SELECT * FROM `{db}`.`{}`", t.name), ()).await.unwrap();
            c.disconnect().await.unwrap();
            r
        });
        let date = |v: &Value| match v {
            Value::Date(y, m, d, ..) => NaiveDate::from_ymd_opt(*y as i32, *m as u32, *d as u32).unwrap(),
            v => panic!("not a date: {v:?}"),
        };
        canonical(rows.len(), t, |i, j, col| {
            let v = rows[i].as_ref(j).unwrap();
            if *v == Value::NULL {
                return show::<i64>(None);
            }
            match (col.ty.as_str(), v) {
                ("boolean", Value::Int(i)) => show(Some(*i != 0)),
                ("int32" | "int64", Value::Int(i)) => show(Some(*i)),
                ("float64", Value::Double(f)) => show(Some(f.to_bits())),
                ("decimal", Value::Bytes(b)) => show(Some(String::from_utf8(b.clone()).unwrap())),
                ("date", v) => show(Some(date(v))),
                ("timestamp", Value::Date(y, mo, d, h, mi, s, us)) => {
                    let t = NaiveDate::from_ymd_opt(*y as i32, *mo as u32, *d as u32)
                        .unwrap()
                        .and_hms_micro_opt(*h as u32, *mi as u32, *s as u32, *us)
                        .unwrap()
                        .and_utc();
                    show(Some(t.timestamp_micros()))
                }
                (_, Value::Bytes(b)) => show(Some(String::from_utf8(b.clone()).unwrap())),
                (ty, v) => panic!("{}.{}: unexpected {ty} value {v:?}", t.name, col.name),
            }
        })
    }
}

impl Drop for My {
    fn drop(&mut self) {
        // A failed test shows the server's side of it.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("err.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- mariadbd err.log (last 40 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("--- mariadbd had exited: {status} ---");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

/// One text per row (`cell(row, column index, column)` joined by `|`), sorted.
fn canonical(
    n: usize,
    t: &TableSchema,
    cell: impl Fn(usize, usize, &footfall::schema::ColumnSchema) -> String,
) -> Vec<String> {
    let mut rows: Vec<String> = (0..n)
        .map(|i| t.columns.iter().enumerate().map(|(j, c)| cell(i, j, c)).collect::<Vec<_>>().join("|"))
        .collect();
    rows.sort();
    rows
}

fn show<T: std::fmt::Debug>(v: Option<T>) -> String {
    match v {
        None => "NULL".into(),
        Some(v) => format!("{v:?}"),
    }
}

/// Every row of a published table, canonical and sorted (from polars' `AnyValue`s).
fn parquet_rows(d: &Path, out: &str, t: &TableSchema) -> Vec<String> {
    location_rows(&footfall::store::Location::parse(out, d, "test").unwrap(), t)
}

fn location_rows(loc: &footfall::store::Location, t: &TableSchema) -> Vec<String> {
    let df = footfall::tables::read_table(loc, t, "Europe/Berlin", None, None).unwrap();
    let cols = df.columns();
    canonical(df.height(), t, |i, _, c| {
        let col = cols.iter().find(|x| x.name().as_str() == c.name).unwrap();
        match col.get(i).unwrap() {
            AnyValue::Null => "NULL".to_string(),
            AnyValue::Boolean(b) => show(Some(b)),
            AnyValue::Int32(v) => show(Some(v as i64)),
            AnyValue::Int64(v) => show(Some(v)),
            AnyValue::Float64(v) => show(Some(v.to_bits())),
            AnyValue::String(s) => show(Some(s.to_string())),
            AnyValue::StringOwned(s) => show(Some(s.to_string())),
            AnyValue::Date(days) => show(Some(NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap())),
            AnyValue::Decimal(v, _, scale) => {
                assert_eq!(scale, 2, "{}.{}", t.name, c.name);
                let sign = if v < 0 { "-" } else { "" };
                show(Some(format!("{sign}{}.{:02}", v.unsigned_abs() / 100, v.unsigned_abs() % 100)))
            }
            AnyValue::Datetime(v, unit, _) | AnyValue::DatetimeOwned(v, unit, _) => {
                let us = match unit {
                    TimeUnit::Milliseconds => v * 1000,
                    TimeUnit::Microseconds => v,
                    TimeUnit::Nanoseconds => v / 1000,
                };
                show(Some(us))
            }
            v => panic!("{}.{}: unexpected {v:?}", t.name, c.name),
        }
    })
}

fn results() -> Vec<&'static TableSchema> {
    footfall::schema::results().collect()
}

type Dump = BTreeMap<String, Vec<String>>;

fn dump_pg(pg: &Pg, schema: &str) -> Dump {
    results().into_iter().map(|t| (t.name.clone(), pg.rows(schema, t))).collect()
}

fn dump_parquet(d: &Path, out: &str) -> Dump {
    results().into_iter().map(|t| (t.name.clone(), parquet_rows(d, out, t))).collect()
}

/// Equal table by table (a failure names the table and the first differing row).
fn assert_same(what: &str, got: &Dump, want: &Dump) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: tables");
    for (t, w) in want {
        let g = &got[t];
        if g != w {
            let i = g.iter().zip(w).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
            panic!(
                "{what}: table {t} differs: {} rows vs {} expected; first difference at row {i}:\n  got  {:?}\n  want {:?}",
                g.len(),
                w.len(),
                g.get(i),
                w.get(i)
            );
        }
    }
}

fn export_env(d: &Path, args: &[&str], extra: &[(&str, &str)]) -> Out {
    let mut env = vec![("PGPASSWORD", PASSWORD), ("MYSQL_PWD", PASSWORD)];
    env.extend_from_slice(extra);
    let mut a = vec!["export"];
    if !args.contains(&"--config") {
        a.extend(["--config", "footfall.toml"]);
    }
    a.extend_from_slice(args);
    run_env(d, &a, &env)
}

fn export_ok(d: &Path, args: &[&str]) -> Out {
    let o = export_env(d, args, &[]);
    assert_eq!(o.code, 0, "export failed\n{}", o.explain());
    o
}

fn with_config(d: &Path, extra: &str) {
    let base = std::fs::read_to_string(root().join("data/golden/footfall.toml")).unwrap();
    std::fs::write(d.join("footfall.toml"), format!("{base}\n{extra}")).unwrap();
}

#[test]
#[cfg_attr(not(has_postgres), ignore = "needs PostgreSQL: .ci/run installs it")]
fn postgres_tables_equal_parquet_and_a_second_export_changes_nothing() {
    let pg = Pg::start();
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let o = export_ok(d, &["--to", &pg.url()]);
    // Every published date partition of a result table, counted from the files.
    let n_dates = files_under(&d.join("out"))
        .iter()
        .filter(|f| !f.starts_with("_state") && f.to_string_lossy().contains("/date="))
        .count();
    assert!(n_dates >= 2 * footfall::metrics::DAILY.len(), "{n_dates}");
    assert!(o.stderr.contains(&format!("export: {n_dates} partition(s) and 2 snapshot(s) written")), "{}", o.explain());
    let want = dump_parquet(d, "out");
    assert!(want.values().all(|rows| !rows.is_empty()), "every table has rows in the golden mall");
    let first = dump_pg(&pg, "public");
    assert_same("postgres after export", &first, &want);
    // Types as the issue asks: timezone-aware timestamps, dates as dates.
    assert_eq!(
        pg.query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name = 'customers' AND data_type = 'timestamp with time zone'"
        ),
        2
    );
    let o = export_ok(d, &["--to", &pg.url()]);
    assert!(
        o.stderr.contains(&format!(
            "0 partition(s) and 0 snapshot(s) written (0 rows), 0 date(s) retracted, {} up to date",
            n_dates + 2
        )),
        "{}",
        o.explain()
    );
    assert_same("postgres after a second export", &dump_pg(&pg, "public"), &first);
    // The password went through PGPASSWORD and is nowhere in what footfall printed or wrote.
    assert!(!o.stderr.contains(PASSWORD));
    for f in files_under(d) {
        let bytes = std::fs::read(d.join(&f)).unwrap();
        assert!(!bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()), "password in {}", f.display());
    }
}

#[test]
#[cfg_attr(not(has_postgres), ignore = "needs PostgreSQL: .ci/run installs it")]
fn update_with_after_update_exports_what_changed_and_equals_a_fresh_run() {
    let pg = Pg::start();
    let dir = golden_mall();
    let d = dir.path();
    // Hold back the first day's daytime files (late arrivals) and shrink one file of the
    // second day later: old dates change, and a date loses rows.
    let late: Vec<PathBuf> =
        golden_files().into_iter().filter(|f| f.to_string_lossy().contains("date=2026-03-28/hour=1")).collect();
    assert!(late.len() >= 5, "{late:?}");
    let held = d.join("held");
    for f in &late {
        std::fs::create_dir_all(held.join(f).parent().unwrap()).unwrap();
        std::fs::rename(d.join("probes").join(f), held.join(f)).unwrap();
    }
    with_config(d, &format!("[export]\nurl = \"{}\"\nschema = \"mall\"\nafter_update = true\n", pg.url()));
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let o = run_env(d, &["update", "--config", "footfall.toml"], &[("PGPASSWORD", PASSWORD)]);
    assert_eq!(o.code, 0, "{}", o.explain());
    // Nothing new: the update exports everything the run published (nothing was exported yet).
    assert!(o.stderr.contains("2 snapshot(s) written"), "{}", o.explain());
    assert_same("after the first update", &dump_pg(&pg, "mall"), &dump_parquet(d, "out"));

    for f in &late {
        std::fs::rename(held.join(f), d.join("probes").join(f)).unwrap();
    }
    let o = run_env(d, &["update", "--config", "footfall.toml"], &[("PGPASSWORD", PASSWORD)]);
    assert_eq!(o.code, 0, "{}", o.explain());
    assert!(o.stderr.contains("2 date(s) published"), "{}", o.explain());
    assert_same("after late files", &dump_pg(&pg, "mall"), &dump_parquet(d, "out"));

    let positions = "SELECT count(*) FROM mall.customer_positions WHERE date = '2026-03-29'";
    let before = pg.query_one(positions);
    let biggest = golden_files()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("date=2026-03-29"))
        .max_by_key(|f| std::fs::metadata(d.join("probes").join(f)).unwrap().len())
        .unwrap();
    shrink(&d.join("probes").join(&biggest));
    let o = run_env(d, &["update", "--config", "footfall.toml"], &[("PGPASSWORD", PASSWORD)]);
    assert_eq!(o.code, 0, "{}", o.explain());
    let after = pg.query_one(positions);
    assert!(
        after < before,
        "2026-03-29 lost rows in Parquet, so in the database: {before} -> {after}\n{}",
        o.explain()
    );
    let updated = dump_pg(&pg, "mall");
    assert_same("after a shrunk file", &updated, &dump_parquet(d, "out"));

    // A fresh run of the same files, exported into another schema, equals the updated one.
    ok(d, &["run", "--config", "footfall.toml", "--out", "fresh", "--quiet"]);
    let fresh_cfg = format!(
        "{}\n[export]\nurl = \"{}\"\nschema = \"fresh\"\n",
        std::fs::read_to_string(root().join("data/golden/footfall.toml")).unwrap(),
        pg.url()
    );
    std::fs::write(d.join("fresh.toml"), fresh_cfg).unwrap();
    let o = run_env(d, &["export", "--config", "fresh.toml", "--results", "fresh"], &[("PGPASSWORD", PASSWORD)]);
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_same("update vs fresh run", &updated, &dump_pg(&pg, "fresh"));
}

#[test]
#[cfg_attr(not(has_mariadb), ignore = "needs MariaDB: .ci/run installs it")]
fn mariadb_tables_equal_parquet_through_updates() {
    let my = My::start();
    let dir = golden_mall();
    let d = dir.path();
    with_config(d, &format!("[export]\nurl = \"{}\"\nafter_update = true\n", my.url()));
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    export_ok(d, &[]);
    let dump = |my: &My| -> Dump { results().into_iter().map(|t| (t.name.clone(), my.rows("mall", t))).collect() };
    let first = dump(&my);
    assert_same("mariadb after export", &first, &dump_parquet(d, "out"));
    let o = export_ok(d, &[]);
    assert!(o.stderr.contains("0 partition(s) and 0 snapshot(s) written"), "{}", o.explain());
    assert_same("mariadb after a second export", &dump(&my), &first);

    let biggest =
        golden_files().into_iter().max_by_key(|f| std::fs::metadata(d.join("probes").join(f)).unwrap().len()).unwrap();
    shrink(&d.join("probes").join(&biggest));
    let o = run_env(d, &["update", "--config", "footfall.toml"], &[("MYSQL_PWD", PASSWORD)]);
    assert_eq!(o.code, 0, "{}", o.explain());
    let after = dump(&my);
    assert!(after["customer_positions"].len() < first["customer_positions"].len(), "a shrunk file loses rows");
    assert_same("mariadb after a shrunk file", &after, &dump_parquet(d, "out"));
}

#[test]
#[cfg_attr(not(has_postgres), ignore = "needs PostgreSQL: .ci/run installs it")]
fn an_export_killed_at_any_step_then_rerun_equals_an_uninterrupted_one() {
    let pg = Pg::start();
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let want = dump_parquet(d, "out");
    // Older results (another top-shops setting: other rows, every object rewritten), so a
    // killed re-export is one replacing existing rows.
    ok(d, &["run", "--config", "footfall.toml", "--out", "old", "--top-shops", "2", "--quiet"]);
    let to = format!("{}?sslmode=disable", pg.url());
    for (i, step) in footfall::fault::EXPORT_STEPS.iter().enumerate() {
        for phase in ["fresh", "replace"] {
            let schema = format!("k{i}_{phase}");
            with_config(d, &format!("[export]\nschema = \"{schema}\"\n"));
            if phase == "replace" {
                export_ok(d, &["--to", &to, "--results", "old"]);
                assert_ne!(dump_pg(&pg, &schema), want, "the old results differ");
            }
            let o = export_env(d, &["--to", &to], &[("FOOTFALL_FAIL_AT", step)]);
            assert_ne!(o.code, 0, "{step}: the export must have been killed\n{}", o.explain());
            assert!(o.stderr.contains(&format!("injected failure at step '{step}'")), "{}", o.explain());
            export_ok(d, &["--to", &to]);
            assert_same(&format!("killed at {step} ({phase}), then re-run"), &dump_pg(&pg, &schema), &want);
        }
    }
}

#[test]
#[cfg_attr(not(has_postgres), ignore = "needs PostgreSQL: .ci/run installs it")]
fn server_down_is_exit_3_and_the_next_update_exports_what_was_missed() {
    let pg = Pg::start();
    let dir = golden_mall();
    let d = dir.path();
    with_config(d, &format!("[export]\nurl = \"{}\"\nafter_update = true\n", pg.url()));
    let last = golden_files().pop().unwrap();
    let held = d.join("held.parquet");
    std::fs::rename(d.join("probes").join(&last), &held).unwrap();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);

    // Stopped mid-export: held after its first committed partition, the server goes down.
    let hold = d.join("hold");
    std::fs::write(&hold, "").unwrap();
    let bin = bin();
    let child = Command::new(&bin)
        .args(["export", "--config", "footfall.toml"])
        .current_dir(d)
        .env("PGPASSWORD", PASSWORD)
        .env("FOOTFALL_PAUSE_AT", "export-after-first-partition")
        .env("FOOTFALL_PAUSE_WHILE", &hold)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while pg.query_one("SELECT count(*) FROM information_schema.tables WHERE table_name = 'footfall_export_state'") == 0
        || pg.query_one("SELECT count(*) FROM public.footfall_export_state") == 0
    {
        assert!(t0.elapsed().as_secs() < 60, "the export never committed a partition");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    pg.down();
    std::fs::remove_file(&hold).unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "server stopped mid-export: exit 3\n{stderr}");
    assert!(stderr.contains("127.0.0.1"), "{stderr}");

    // Down at update time: the update publishes, the export fails with exit 3; footfall's
    // outputs and state are the update's; the next update (nothing new) exports it all.
    std::fs::rename(&held, d.join("probes").join(&last)).unwrap();
    let o = run_env(d, &["update", "--config", "footfall.toml"], &[("PGPASSWORD", PASSWORD)]);
    assert_eq!(o.code, 3, "{}", o.explain());
    assert!(o.stderr.contains("exporting them failed") && o.stderr.contains("127.0.0.1"), "{}", o.explain());
    let dry = ok(d, &["update", "--config", "footfall.toml", "--dry-run"]);
    assert!(dry.stdout.trim().is_empty(), "the update was recorded, nothing is left to read: {}", dry.stdout);
    pg.up();
    let o = run_env(d, &["update", "--config", "footfall.toml"], &[("PGPASSWORD", PASSWORD)]);
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_same("after the server came back", &dump_pg(&pg, "public"), &dump_parquet(d, "out"));
}

#[test]
#[cfg_attr(not(has_postgres), ignore = "needs PostgreSQL: .ci/run installs it")]
#[cfg_attr(not(has_mariadb), ignore = "needs MariaDB: .ci/run installs it")]
fn refused_credentials_are_exit_3_naming_the_host_without_the_password() {
    let (pg, my) = (Pg::start(), My::start());
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let wrong = "Wrong-Pass-4242";
    for url in [
        format!("postgresql://footfall:{wrong}@127.0.0.1:{}/postgres", pg.port),
        format!("mysql://footfall:{wrong}@127.0.0.1:{}/mall", my.port),
    ] {
        let o = run_env(d, &["export", "--config", "footfall.toml", "--to", &url], &[]);
        assert_eq!(o.code, 3, "{}", o.explain());
        assert!(o.stderr.contains("footfall@127.0.0.1"), "the message names user and host\n{}", o.explain());
        assert!(!o.stderr.contains(wrong) && !o.stdout.contains(wrong), "{}", o.explain());
    }
    // The right password in the URL works (and is still not printed).
    let url = format!("postgresql://footfall:{PASSWORD}@127.0.0.1:{}/postgres", pg.port);
    let o = run_env(d, &["export", "--config", "footfall.toml", "--to", &url, "--tables", "mall_daily_visitors"], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    assert!(!o.stderr.contains(PASSWORD), "{}", o.explain());
    // Nothing listening: exit 3 too.
    let port = free_port();
    let o = export_env(d, &["--to", &format!("postgresql://footfall@127.0.0.1:{port}/x")], &[]);
    assert_eq!(o.code, 3, "{}", o.explain());
}

#[test]
#[cfg_attr(not(has_postgres), ignore = "needs PostgreSQL: .ci/run installs it")]
fn tables_selection_keyed_mode_and_a_mismatched_table() {
    let pg = Pg::start();
    let dir = golden_mall();
    let d = dir.path();
    let o = run_env(d, &["run", "--config", "footfall.toml", "--quiet"], &[("FOOTFALL_MAC_KEY", "k-2026")]);
    assert_eq!(o.code, 0, "{}", o.explain());
    // Everything but the per-second table.
    let some: Vec<&str> = results().iter().map(|t| t.name.as_str()).filter(|n| *n != "customer_positions").collect();
    export_ok(d, &["--to", &pg.url(), "--tables", &some.join(",")]);
    assert_eq!(
        pg.query_one("SELECT count(*) FROM information_schema.tables WHERE table_name = 'customer_positions'"),
        0
    );
    let want = dump_parquet(d, "out");
    for t in results().into_iter().filter(|t| t.name != "customer_positions") {
        assert_eq!(pg.rows("public", t), want[&t.name], "{}", t.name);
    }
    // Keyed mode: the device column holds pseudonyms (32 hex digits), never a MAC.
    let macs = pg.query_one("SELECT count(*) FROM public.customers WHERE user_device_mac ~ '^([0-9a-fA-F]{2}[:-]){5}'");
    let pseudo = pg.query_one("SELECT count(*) FROM public.customers WHERE user_device_mac ~ '^[0-9a-f]{32}$'");
    assert_eq!(macs, 0);
    assert_eq!(pseudo as usize, want["customers"].len());

    // A table whose columns differ: exit 2 naming table and column; nothing is altered.
    pg.execute("CREATE SCHEMA other; CREATE TABLE other.mall_daily_visitors (date DATE PRIMARY KEY, visitors TEXT)");
    with_config(d, "[export]\nschema = \"other\"\n");
    let o = export_env(d, &["--to", &pg.url(), "--tables", "mall_daily_visitors"], &[]);
    assert_eq!(o.code, 2, "{}", o.explain());
    assert!(o.stderr.contains("mall_daily_visitors") && o.stderr.contains("column"), "{}", o.explain());
    assert_eq!(pg.query_one("SELECT count(*) FROM other.mall_daily_visitors"), 0);
}

/// A result table as a chain exports it, written out here: `mall` first in columns and key.
fn chain_schema(t: &TableSchema) -> TableSchema {
    let mut t = t.clone();
    let mut mall = t.columns[0].clone();
    (mall.name, mall.ty, mall.nullable) = ("mall".into(), "string".into(), false);
    t.columns.insert(0, mall);
    t.primary_key.insert(0, "mall".into());
    t
}

/// What a chain's export must hold, from the Parquet files: each mall's rows with its id in
/// front, and the chain tables as they are.
fn chain_parquet(d: &Path, malls: &[&str]) -> Dump {
    let root = footfall::store::Location::parse("out", d, "test").unwrap();
    let mut dump = Dump::new();
    for t in results() {
        let mut rows: Vec<String> = malls
            .iter()
            .flat_map(|id| location_rows(&root.for_mall(id), t).into_iter().map(move |r| format!("{id:?}|{r}")))
            .collect();
        rows.sort();
        dump.insert(t.name.clone(), rows);
    }
    for t in footfall::schema::chain_tables() {
        dump.insert(t.name.clone(), location_rows(&root, t));
    }
    dump
}

fn chain_dump(rows: impl Fn(&TableSchema) -> Vec<String>, with_chain_tables: bool) -> Dump {
    let mut dump: Dump = results().into_iter().map(|t| (t.name.clone(), rows(&chain_schema(t)))).collect();
    if with_chain_tables {
        dump.extend(footfall::schema::chain_tables().map(|t| (t.name.clone(), rows(t))));
    }
    dump
}

#[test]
#[cfg_attr(not(has_postgres), ignore = "needs PostgreSQL: .ci/run installs it")]
fn a_chain_exports_with_a_mall_column_and_each_mall_touches_only_its_rows() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::chain::chain(d);
    let ids: Vec<&str> = crate::chain::MALLS.iter().map(|m| m.0).collect();
    let toml = std::fs::read_to_string(d.join("chain.toml")).unwrap();
    let export = format!("[export]\nurl = \"{}\"\nschema = \"chain\"\nafter_update = true\n", pg.url());
    std::fs::write(d.join("chain.toml"), format!("{toml}{export}")).unwrap();

    // One mall exported first: only its rows, and no chain tables.
    let o = run_env(d, &["run", "--config", "chain.toml", "--quiet"], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    let o = export_env(d, &["--config", "chain.toml", "--mall", "west"], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    let west = chain_parquet(d, &["west"]);
    let pg = &pg;
    let rows = move |t: &TableSchema| pg.rows("chain", t);
    let got = chain_dump(rows, false);
    let want_west: Dump =
        west.iter().filter(|(t, _)| got.contains_key(*t)).map(|(t, r)| (t.clone(), r.clone())).collect();
    assert_same("one mall of the chain", &got, &want_west);
    // Every table but the sales ones (the generated malls have no sales feed).
    assert!(want_west.iter().all(|(t, r)| !r.is_empty() || t.ends_with("_sales")), "west has rows in every table");
    assert_eq!(pg.query_one("SELECT count(*) FROM chain.chain_daily_visitors"), 0);

    // `update` of the whole chain with after_update: the other malls' rows and the chain
    // tables join west's, which are up to date.
    let o = run_env(d, &["update", "--config", "chain.toml"], &[("PGPASSWORD", PASSWORD)]);
    assert_eq!(o.code, 0, "{}", o.explain());
    assert!(o.stderr.contains("chain:"), "{}", o.explain());
    let want = chain_parquet(d, &ids);
    let first = chain_dump(rows, true);
    assert_same("the chain after update", &first, &want);
    assert!(first["chain_daily_visitors"].len() >= 3, "{:?}", first["chain_daily_visitors"]);

    // Exporting one mall again, or the chain, changes nothing: no mall retracts another's rows.
    for args in [&["--config", "chain.toml", "--mall", "east"][..], &["--config", "chain.toml"][..]] {
        let o = export_env(d, args, &[]);
        assert_eq!(o.code, 0, "{}", o.explain());
        assert!(
            o.stderr.contains("0 partition(s) and 0 snapshot(s) written (0 rows), 0 date(s) retracted"),
            "{}",
            o.explain()
        );
    }
    assert_same("after re-exporting", &chain_dump(rows, true), &first);

    // A single mall exported over a chain's table: exit 2 naming the column, nothing altered.
    let before = pg.query_one("SELECT count(*) FROM chain.mall_daily_visitors");
    let east = std::fs::read_to_string(d.join("east/footfall.toml")).unwrap();
    std::fs::write(d.join("east/footfall.toml"), format!("{east}\n[export]\nschema = \"chain\"\n")).unwrap();
    ok(d, &["run", "--config", "east/footfall.toml", "--out", "alone", "--quiet"]);
    let alone = ["--config", "east/footfall.toml", "--results", "alone", "--to", &pg.url()];
    let o = export_env(d, &alone, &[]);
    assert_eq!(o.code, 2, "{}", o.explain());
    assert!(o.stderr.contains("has column mall (text) that footfall does not write"), "{}", o.explain());
    assert_eq!(pg.query_one("SELECT count(*) FROM chain.mall_daily_visitors"), before);
    // A chain table without a chain, and with --mall, are usage errors.
    let o = export_env(d, &[&alone[..], &["--tables", "chain_daily_visitors"]].concat(), &[]);
    assert_eq!(o.code, 2, "{}", o.explain());
    let o = export_env(d, &["--config", "chain.toml", "--mall", "east", "--tables", "chain_daily_visitors"], &[]);
    assert_eq!(o.code, 2, "{}", o.explain());
    assert!(o.stderr.contains("without --mall"), "{}", o.explain());
}

#[test]
#[cfg_attr(not(has_mariadb), ignore = "needs MariaDB: .ci/run installs it")]
fn mariadb_holds_a_whole_chain() {
    let my = My::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::chain::chain(d);
    let ids: Vec<&str> = crate::chain::MALLS.iter().map(|m| m.0).collect();
    ok(d, &["run", "--config", "chain.toml", "--quiet"]);
    let o = export_env(d, &["--config", "chain.toml", "--to", &my.url()], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    let first = chain_dump(|t| my.rows("mall", t), true);
    assert_same("mariadb chain", &first, &chain_parquet(d, &ids));
    let o = export_env(d, &["--config", "chain.toml", "--to", &my.url(), "--mall", "other"], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    assert!(o.stderr.contains("0 partition(s) and 0 snapshot(s) written"), "{}", o.explain());
    assert_same("mariadb after one mall again", &chain_dump(|t| my.rows("mall", t), true), &first);
}
