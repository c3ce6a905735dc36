//! `footfall export`: the published tables, copied into PostgreSQL or MySQL/MariaDB where
//! dashboards read them.
//!
//! Why a sync and not an append: a re-published date can have fewer rows than before, so
//! upserting by key would leave stale rows behind. The unit of export is therefore the unit
//! of publishing — one (table, date) partition, or one snapshot table — replaced whole in one
//! database transaction that also records, in `footfall_export_state` in the target, which
//! version of the partition's object it holds. An export compares the objects' versions
//! (their ETag, which changes whenever footfall re-writes them) with that record and copies
//! only what differs, deletes the dates footfall retracted, and leaves the rest alone. So:
//!
//! - a killed export, re-run, finishes the same as an uninterrupted one (a partition's rows
//!   and its record commit together; a partition half-loaded was never committed);
//! - `update` with `after_update` exports exactly the partitions it re-published, plus any an
//!   earlier failed export missed, without footfall's own state knowing about the database;
//! - readers see a date's old rows or its new rows, never a mix.
//!
//! ```text
//! plan (tables, dates, target) ─▶ list published objects ─▶ diff with footfall_export_state
//!   ─▶ per partition: read Parquet ─▶ [BEGIN; DELETE date; COPY/INSERT; record; COMMIT]
//!   ─▶ per snapshot: [BEGIN; load temp table; upsert by key; delete gone keys; record; COMMIT]
//! ```

mod mysql;
mod postgres;
mod rows;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use chrono::NaiveDate;

use crate::bail_usage;
use crate::fault;
use crate::progress::Progress;
use crate::schema::TableSchema;
use crate::store::{block_on, Location};
use crate::tables;
pub use rows::Rows;

/// The state table in the target schema: which object version each partition holds.
pub const STATE_TABLE: &str = "footfall_export_state";

/// The `part` of a snapshot's record (a daily table's part is its date).
const SNAPSHOT_PART: &str = "snapshot";

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Mysql,
}

/// A parsed target. The password never leaves this struct: [`Target::show`] and `Debug`
/// omit it.
#[derive(Clone)]
pub struct Target {
    pub kind: Kind,
    url: url::Url,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.show())
    }
}

impl Target {
    /// Parses `postgresql://user[:password]@host[:port]/db` or `mysql://…`; a password missing
    /// from the URL comes from `PGPASSWORD` / `MYSQL_PWD`.
    pub fn parse(spec: &str) -> Result<Target> {
        let Ok(url) = url::Url::parse(spec) else {
            bail_usage!("export target: expected postgresql://user@host:port/db or mysql://user@host:port/db");
        };
        let (kind, default_port, env) = match url.scheme() {
            "postgresql" | "postgres" => (Kind::Postgres, 5432, "PGPASSWORD"),
            "mysql" | "mariadb" => (Kind::Mysql, 3306, "MYSQL_PWD"),
            s => bail_usage!("export target: unsupported scheme '{s}' (use postgresql:// or mysql://)"),
        };
        let host = url.host_str().unwrap_or("").to_string();
        if host.is_empty() {
            bail_usage!("export target: the URL names no host");
        }
        let user = percent(url.username());
        if user.is_empty() {
            bail_usage!("export target {}: the URL names no user", url.scheme());
        }
        let database = percent(url.path().trim_start_matches('/'));
        if database.is_empty() {
            bail_usage!("export target {}://{user}@{host}: the URL names no database", url.scheme());
        }
        let password = url.password().map(percent).or_else(|| std::env::var(env).ok());
        let port = url.port().unwrap_or(default_port);
        Ok(Target { kind, url, host, port, user, database, password })
    }

    /// The target without its password, for messages.
    pub fn show(&self) -> String {
        let scheme = match self.kind {
            Kind::Postgres => "postgresql",
            Kind::Mysql => "mysql",
        };
        format!("{scheme}://{}@{}:{}/{}", self.user, self.host, self.port, self.database)
    }

    /// Query parameters of the URL (e.g. `sslmode`), passed on to the driver.
    fn query_pairs(&self) -> Vec<(String, String)> {
        self.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }
}

/// Percent-decodes a URL part (`+` stays `+`: this is not form encoding).
fn percent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What an export does, validated before any work starts.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub target: Target,
    /// PostgreSQL schema / MySQL database the tables live in.
    pub schema: String,
    pub tables: Vec<&'static TableSchema>,
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
}

impl ExportPlan {
    /// Validates a target, schema and table list (`None`: every result table).
    pub fn new(
        target: &str,
        schema: Option<&str>,
        tables: Option<&[String]>,
        from: Option<NaiveDate>,
        until: Option<NaiveDate>,
    ) -> Result<ExportPlan> {
        let target = Target::parse(target)?;
        let schema = match schema {
            Some(s) => s.to_string(),
            None if target.kind == Kind::Postgres => "public".into(),
            None => target.database.clone(),
        };
        if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || schema.len() > 63 {
            bail_usage!("export.schema: '{schema}' must be letters, digits and '_' (at most 63)");
        }
        let tables: Vec<&'static TableSchema> = match tables {
            None => crate::schema::results().collect(),
            Some(names) => {
                let mut out = Vec::new();
                for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                    let t = crate::schema::get(n)?;
                    if t.kind != "result" {
                        bail_usage!("export: '{n}' is not a result table");
                    }
                    // A view comes with the tables it reads.
                    for name in t.view_of.iter().map(String::as_str).chain([t.name.as_str()]) {
                        let t = crate::schema::get(name)?;
                        if !out.iter().any(|o: &&TableSchema| o.name == t.name) {
                            out.push(t);
                        }
                    }
                }
                if out.is_empty() {
                    bail_usage!("export: the table list is empty");
                }
                out
            }
        };
        if let (Some(f), Some(u)) = (from, until) {
            if f > u {
                bail_usage!("export: --from {f} is after --until {u}");
            }
        }
        Ok(ExportPlan { target, schema, tables, from, until })
    }

    fn in_range(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| d >= f) && self.until.is_none_or(|u| d <= u)
    }
}

/// What an export did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExportReport {
    /// (table, date) partitions replaced.
    pub partitions: usize,
    /// Snapshot tables replaced.
    pub snapshots: usize,
    /// Dates removed from the database because footfall retracted them.
    pub retracted: usize,
    /// Partitions and snapshots already up to date.
    pub unchanged: usize,
    /// Rows written.
    pub rows: u64,
}

/// One published object the export may copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub table: String,
    /// The date (`YYYY-MM-DD`), or [`SNAPSHOT_PART`].
    pub part: String,
    pub rel: String,
    pub version: String,
}

/// What to do, from the published objects and what the target records.
#[derive(Debug, Default, PartialEq)]
pub struct Actions {
    pub load: Vec<Part>,
    /// (table, date) recorded in the target but no longer published.
    pub retract: Vec<(String, String)>,
    pub unchanged: usize,
}

/// Diffs the published objects with the target's record. `recorded` holds only what the
/// plan selects (its tables, and dates in range).
pub fn diff(published: Vec<Part>, recorded: &BTreeMap<(String, String), String>) -> Actions {
    let mut a = Actions::default();
    let mut seen = BTreeSet::new();
    for p in published {
        seen.insert((p.table.clone(), p.part.clone()));
        match recorded.get(&(p.table.clone(), p.part.clone())) {
            Some(v) if *v == p.version => a.unchanged += 1,
            _ => a.load.push(p),
        }
    }
    a.retract = recorded.keys().filter(|k| !seen.contains(*k)).cloned().collect();
    a
}

/// Lists the published objects the plan selects, with their versions.
fn published(out: &Location, plan: &ExportPlan) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for t in plan.tables.iter().filter(|t| !t.is_view()) {
        for e in out.list_under(&t.name)? {
            let version = e.e_tag.clone().unwrap_or_else(|| format!("{}-{}", e.size, e.last_modified));
            if t.is_snapshot() {
                if e.rel == tables::snapshot_rel(&t.name) {
                    parts.push(Part { table: t.name.clone(), part: SNAPSHOT_PART.into(), rel: e.rel, version });
                }
                continue;
            }
            let Some(d) = e
                .rel
                .split('/')
                .find_map(|s| s.strip_prefix("date="))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if e.rel == tables::partition_rel(&t.name, d) && plan.in_range(d) {
                parts.push(Part { table: t.name.clone(), part: d.to_string(), rel: e.rel, version });
            }
        }
    }
    Ok(parts)
}

/// A database the tables are exported to. Each method is one transaction (or DDL).
trait Sink {
    /// Creates the schema, the tables that are missing and the state table; checks the
    /// columns of those that exist. Returns the recorded versions.
    async fn prepare(&mut self, tables: &[&'static TableSchema]) -> Result<BTreeMap<(String, String), String>>;
    /// Replaces one date of a table by `rows` and records `version`, in one transaction.
    async fn replace_date(&mut self, t: &TableSchema, date: NaiveDate, rows: &Rows, version: &str) -> Result<()>;
    /// Deletes one date of a table and its record, in one transaction.
    async fn retract_date(&mut self, t: &TableSchema, date: NaiveDate) -> Result<()>;
    /// Replaces a snapshot table's contents by `rows` (upsert by key, delete gone keys) and
    /// records `version`, in one transaction.
    async fn replace_snapshot(&mut self, t: &TableSchema, rows: &Rows, version: &str) -> Result<()>;
}

/// Exports what the plan selects from `out` (see the module docs).
pub fn export(out: &Location, plan: &ExportPlan, progress: Progress) -> Result<ExportReport> {
    match plan.target.kind {
        Kind::Postgres => {
            let mut sink = block_on(postgres::Pg::connect(&plan.target, &plan.schema))?;
            run(&mut sink, out, plan, progress)
        }
        Kind::Mysql => {
            let mut sink = block_on(mysql::My::connect(&plan.target, &plan.schema))?;
            let r = run(&mut sink, out, plan, progress);
            block_on(sink.close());
            r
        }
    }
}

fn run<S: Sink>(sink: &mut S, out: &Location, plan: &ExportPlan, progress: Progress) -> Result<ExportReport> {
    let target = plan.target.show();
    let recorded = block_on(sink.prepare(&plan.tables))
        .with_context(|| format!("cannot prepare the tables in {target} (schema {})", plan.schema))?;
    fault::point("export-after-tables");
    // A table exported as a snapshot before and partitioned now (data_quality, state format 7),
    // or the reverse, cannot be updated part by part.
    for (table, part) in recorded.keys() {
        if let Some(t) = plan.tables.iter().find(|t| t.name == *table && !t.is_view()) {
            if t.is_snapshot() != (part == SNAPSHOT_PART) {
                bail_usage!(
                    "export: table {table} in {target} was exported with another layout (as {}); drop it once and export again",
                    if part == SNAPSHOT_PART { "one snapshot" } else { "dated partitions" }
                );
            }
        }
    }
    let selected: BTreeMap<(String, String), String> = recorded
        .into_iter()
        .filter(|((t, p), _)| {
            plan.tables.iter().any(|s| s.name == *t)
                && (p == SNAPSHOT_PART || NaiveDate::parse_from_str(p, "%Y-%m-%d").is_ok_and(|d| plan.in_range(d)))
        })
        .collect();
    let actions = diff(published(out, plan)?, &selected);
    let mut report = ExportReport { unchanged: actions.unchanged, ..Default::default() };
    let bar = progress.bar((actions.load.len() + actions.retract.len()) as u64, "exporting");
    for (table, part) in &actions.retract {
        let t = crate::schema::get(table)?;
        let date = NaiveDate::parse_from_str(part, "%Y-%m-%d")?;
        block_on(sink.retract_date(t, date)).with_context(|| format!("cannot remove {table} {part} from {target}"))?;
        report.retracted += 1;
        bar.inc(1);
    }
    for p in &actions.load {
        let t = crate::schema::get(&p.table)?;
        let df = tables::read_parquet(out.get(&p.rel)?).with_context(|| format!("cannot read {}", out.show(&p.rel)))?;
        let what = format!("{} {}", p.table, p.part);
        let (df, date) = if t.is_snapshot() {
            (df, None)
        } else {
            let date = NaiveDate::parse_from_str(&p.part, "%Y-%m-%d")?;
            (tables::with_partition_date(df, date)?, Some(date))
        };
        let rows = Rows::new(t, &df).with_context(|| format!("cannot convert {}", out.show(&p.rel)))?;
        match date {
            Some(d) => block_on(sink.replace_date(t, d, &rows, &p.version)),
            None => block_on(sink.replace_snapshot(t, &rows, &p.version)),
        }
        .with_context(|| format!("cannot export {what} to {target}"))?;
        if date.is_some() {
            report.partitions += 1;
        } else {
            report.snapshots += 1;
        }
        report.rows += rows.height as u64;
        if report.partitions + report.snapshots == 1 {
            fault::point("export-after-first-partition");
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(report)
}

/// Quotes a validated identifier for either dialect.
fn ident(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Postgres => format!("\"{name}\""),
        Kind::Mysql => format!("`{name}`"),
    }
}

/// Columns of a table as `"a", "b"`.
fn column_list(kind: Kind, t: &TableSchema) -> String {
    t.columns.iter().map(|c| ident(kind, &c.name)).collect::<Vec<_>>().join(", ")
}

/// Compares the columns a database reports (name, data type) with what footfall writes.
/// The SQL of a view (`CREATE OR REPLACE VIEW <name> AS` this): the rows of its first table,
/// then of each next one the rows whose key no earlier table has (docs/tables.md, customers).
fn view_sql(k: Kind, q: &dyn Fn(&str) -> String, t: &TableSchema) -> String {
    let cols: Vec<String> = t.columns.iter().map(|c| format!("t.{}", ident(k, &c.name))).collect();
    let mut parts = Vec::new();
    for (i, name) in t.view_of.iter().enumerate() {
        let earlier: Vec<String> = t.view_of[..i]
            .iter()
            .map(|e| {
                let on: Vec<String> = t.primary_key.iter().map(|c| format!("e.{0} = t.{0}", ident(k, c))).collect();
                format!(" AND NOT EXISTS (SELECT 1 FROM {} e WHERE {})", q(e), on.join(" AND "))
            })
            .collect();
        parts.push(format!("SELECT {} FROM {} t WHERE 1 = 1{}", cols.join(", "), q(name), earlier.concat()));
    }
    parts.join(" UNION ALL ")
}

/// A view's name must be free or a view already: a table there (`customers` exported by a
/// footfall before state format 7) is refused, never dropped.
fn check_view_slot(table: &str, table_type: Option<&str>) -> Result<()> {
    match table_type {
        None => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("VIEW") => Ok(()),
        Some(_) => bail_usage!(
            "export: {table} is a table in the database; footfall now exports it as a view over its parts — drop it once"
        ),
    }
}

fn check_columns(table: &str, found: &[(String, String)], want: &[(String, String)]) -> Result<()> {
    for (i, (name, ty)) in want.iter().enumerate() {
        match found.iter().position(|(n, _)| n == name) {
            None => bail_usage!("export: table {table} exists without column {name} ({ty}); footfall does not ALTER tables — drop or migrate it"),
            Some(j) if !found[j].1.eq_ignore_ascii_case(ty) => bail_usage!(
                "export: table {table}, column {name} is {} in the database, footfall writes {ty}",
                found[j].1
            ),
            Some(j) if j != i => bail_usage!("export: table {table}, column {name} is at position {} in the database, footfall writes it at {}", j + 1, i + 1),
            _ => {}
        }
    }
    if let Some((name, ty)) = found.iter().find(|(n, _)| !want.iter().any(|(w, _)| w == n)) {
        bail_usage!("export: table {table} has column {name} ({ty}) that footfall does not write");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(t: &str, p: &str, v: &str) -> Part {
        Part { table: t.into(), part: p.into(), rel: format!("{t}/{p}"), version: v.into() }
    }

    #[test]
    fn diff_loads_changed_and_new_retracts_gone_keeps_equal() {
        let published = vec![part("a", "2026-01-01", "v1"), part("a", "2026-01-02", "v2"), part("b", "snapshot", "s")];
        let recorded: BTreeMap<(String, String), String> = [
            (("a".into(), "2026-01-01".into()), "v1".into()),
            (("a".into(), "2026-01-02".into()), "old".into()),
            (("a".into(), "2025-12-31".into()), "v0".into()),
        ]
        .into();
        let a = diff(published, &recorded);
        assert_eq!(a.unchanged, 1);
        assert_eq!(a.load, vec![part("a", "2026-01-02", "v2"), part("b", "snapshot", "s")]);
        assert_eq!(a.retract, vec![("a".to_string(), "2025-12-31".to_string())]);
    }

    #[test]
    fn target_keeps_its_password_out_of_messages() {
        let t = Target::parse("postgresql://u:s%40cret@db.example:6543/mall?sslmode=require").unwrap();
        assert_eq!((t.kind, t.port, t.user.as_str(), t.database.as_str()), (Kind::Postgres, 6543, "u", "mall"));
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        let p = Target::parse("postgresql://u:a+b%2Fc%25@h/d").unwrap();
        assert_eq!(p.password.as_deref(), Some("a+b/c%"), "a '+' in a password is a '+'");
        assert_eq!(t.show(), "postgresql://u@db.example:6543/mall");
        assert!(!format!("{t:?}").contains("cret"));
        let m = Target::parse("mysql://root@127.0.0.1/x").unwrap();
        assert_eq!((m.kind, m.port), (Kind::Mysql, 3306));
        for bad in ["ftp://u@h/d", "postgresql://h/d", "postgresql://u@h/", "not a url"] {
            let e = Target::parse(bad).unwrap_err();
            assert!(crate::error::exit_code(&e) == 2, "{bad}: {e:#}");
        }
    }

    #[test]
    fn plan_validates_schema_and_tables() {
        let url = "postgresql://u@h/d";
        let p = ExportPlan::new(url, None, None, None, None).unwrap();
        assert_eq!(p.schema, "public");
        assert_eq!(p.tables.len(), crate::schema::results().count());
        let p = ExportPlan::new("mysql://u@h/mall", None, Some(&["customers".into()]), None, None).unwrap();
        // A view comes with the tables it reads.
        let names: Vec<&str> = p.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!((p.schema.as_str(), names), ("mall", vec!["customers_recent", "customers_settled", "customers"]));
        assert!(ExportPlan::new(url, Some("x; drop"), None, None, None).is_err());
        assert!(ExportPlan::new(url, None, Some(&["nope".into()]), None, None).is_err());
        assert!(ExportPlan::new(url, None, Some(&["probes".into()]), None, None).is_err());
    }

    #[test]
    fn column_check_names_table_and_column() {
        let want = vec![("date".to_string(), "date".to_string()), ("n".to_string(), "bigint".to_string())];
        assert!(check_columns("t", &want, &want).is_ok());
        let e = check_columns("t", &[want[0].clone()], &want).unwrap_err().to_string();
        assert!(e.contains("table t") && e.contains("column n"), "{e}");
        let other = vec![want[0].clone(), ("n".to_string(), "text".to_string())];
        let e = check_columns("t", &other, &want).unwrap_err().to_string();
        assert!(e.contains("column n is text"), "{e}");
        let extra = vec![want[0].clone(), want[1].clone(), ("x".to_string(), "text".to_string())];
        assert!(check_columns("t", &extra, &want).unwrap_err().to_string().contains("column x"));
    }
}
