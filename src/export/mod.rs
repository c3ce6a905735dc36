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
    /// The tables as exported: in a chain, with `mall` first in their columns and key.
    pub tables: Vec<TableSchema>,
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    /// `None` for a single mall's outputs; a chain's for the malls it covers.
    pub chain: Option<ChainScope>,
}

/// Which parts of a chain's outputs an export covers. Each mall's rows are its own
/// partitions (`mall=<id>/<date>` in the state table), so exporting some malls never
/// touches another's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainScope {
    pub malls: Vec<String>,
    /// The chain tables (`chain_daily_visitors`, …), which have no `mall` column.
    pub chain_tables: bool,
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
        let tables: Vec<TableSchema> = match tables {
            None => crate::schema::results().cloned().collect(),
            Some(names) => {
                let mut out: Vec<TableSchema> = Vec::new();
                for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                    let t = crate::schema::get(n)?;
                    if t.kind != "result" && t.kind != "chain" {
                        bail_usage!("export: '{n}' is not a result table");
                    }
                    // A view comes with the tables it reads.
                    for name in t.view_of.iter().map(String::as_str).chain([t.name.as_str()]) {
                        let t = crate::schema::get(name)?;
                        if !out.iter().any(|o| o.name == t.name) {
                            out.push(t.clone());
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
        Ok(ExportPlan { target, schema, tables, from, until, chain: None })
    }

    /// The plan for a chain's outputs: every mall table gains a leading `mall` column and
    /// key; the chain tables are among the tables (prepared, exported only when
    /// `scope.chain_tables`) unless an explicit table list leaves them out.
    pub fn in_chain(mut self, scope: ChainScope, all_tables: bool) -> ExportPlan {
        let mut tables: Vec<TableSchema> = self.tables.iter().filter(|t| t.kind != "chain").map(with_mall).collect();
        if all_tables {
            tables.extend(crate::schema::chain_tables().cloned());
        } else {
            tables.extend(self.tables.iter().filter(|t| t.kind == "chain").cloned());
        }
        self.tables = tables;
        self.chain = Some(scope);
        self
    }

    /// The same plan for the chain tables alone (after `update`'s chain step).
    pub fn chain_tables_only(&self) -> ExportPlan {
        ExportPlan { chain: Some(ChainScope { malls: vec![], chain_tables: true }), ..self.clone() }
    }

    fn in_range(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| d >= f) && self.until.is_none_or(|u| d <= u)
    }

    /// Whether a unit recorded in the target is one this plan covers.
    fn covers(&self, table: &TableSchema, u: &Unit) -> bool {
        let mall_ok = match (&self.chain, u.mall) {
            (None, None) => true,
            (Some(c), Some(m)) => table.kind != "chain" && c.malls.iter().any(|x| x == m),
            (Some(c), None) => table.kind == "chain" && c.chain_tables,
            (None, Some(_)) => false,
        };
        mall_ok && u.date.is_none_or(|d| self.in_range(d))
    }
}

/// A table as exported from a chain: `mall` first in its columns and its key.
fn with_mall(t: &TableSchema) -> TableSchema {
    let mut t = t.clone();
    t.columns.insert(
        0,
        crate::schema::ColumnSchema {
            name: MALL.into(),
            ty: "string".into(),
            nullable: false,
            description: "The mall's id (malls[].id of the config).".into(),
            required: None,
            accepted: None,
        },
    );
    t.primary_key.insert(0, MALL.into());
    t
}

/// The column a chain's tables gain.
pub const MALL: &str = "mall";

/// One unit of export: a date or the snapshot of a table, of one mall in a chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit<'a> {
    pub mall: Option<&'a str>,
    /// `None`: the snapshot.
    pub date: Option<NaiveDate>,
}

impl<'a> Unit<'a> {
    /// Its key in the state table: `2026-01-01` or `snapshot`, after `mall=<id>/` in a chain.
    pub fn part(&self) -> String {
        let p = self.date.map_or(SNAPSHOT_PART.to_string(), |d| d.to_string());
        match self.mall {
            Some(m) => format!("mall={m}/{p}"),
            None => p,
        }
    }

    /// A recorded key back as a unit (`None`: not one footfall writes).
    pub fn parse(part: &'a str) -> Option<Unit<'a>> {
        let (mall, p) = match part.strip_prefix("mall=") {
            Some(rest) => {
                let (m, p) = rest.split_once('/')?;
                (Some(m), p)
            }
            None => (None, part),
        };
        let date = match p {
            SNAPSHOT_PART => None,
            d => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?),
        };
        Some(Unit { mall, date })
    }

    /// The SQL condition selecting its rows in its table (columns after `qual`, e.g. `t.`),
    /// `None` for a whole snapshot table. Values are literals: a date, and a mall id the
    /// config validated to `[a-z0-9_-]`.
    fn rows_where(&self, k: Kind, qual: &str) -> Option<String> {
        let mut c = Vec::new();
        if let Some(m) = self.mall {
            debug_assert!(m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            c.push(format!("{qual}{} = '{m}'", ident(k, MALL)));
        }
        if let Some(d) = self.date {
            c.push(format!("{qual}{} = '{d}'", ident(k, "date")));
        }
        (!c.is_empty()).then(|| c.join(" AND "))
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
    /// The mall of a chain it belongs to.
    pub mall: Option<String>,
    /// `None`: the snapshot.
    pub date: Option<NaiveDate>,
    pub rel: String,
    pub version: String,
}

impl Part {
    pub fn unit(&self) -> Unit<'_> {
        Unit { mall: self.mall.as_deref(), date: self.date }
    }
}

/// What to do, from the published objects and what the target records.
#[derive(Debug, Default, PartialEq)]
pub struct Actions {
    pub load: Vec<Part>,
    /// (table, part) recorded in the target but no longer published.
    pub retract: Vec<(String, String)>,
    pub unchanged: usize,
}

/// Diffs the published objects with the target's record. `recorded` holds only what the
/// plan covers (its tables and malls, and dates in range).
pub fn diff(published: Vec<Part>, recorded: &BTreeMap<(String, String), String>) -> Actions {
    let mut a = Actions::default();
    let mut seen = BTreeSet::new();
    for p in published {
        let key = (p.table.clone(), p.unit().part());
        match recorded.get(&key) {
            Some(v) if *v == p.version => a.unchanged += 1,
            _ => a.load.push(p),
        }
        seen.insert(key);
    }
    a.retract = recorded.keys().filter(|k| !seen.contains(*k)).cloned().collect();
    a
}

/// Where the plan's tables are published: `(mall, location)` for each mall it covers, and
/// the chain's root for the chain tables (`out` is a single mall's outputs or a chain's root).
fn sources(out: &Location, plan: &ExportPlan) -> Vec<(Option<String>, Location)> {
    match &plan.chain {
        None => vec![(None, out.clone())],
        Some(c) => {
            let root = out.root();
            let mut v: Vec<(Option<String>, Location)> =
                c.malls.iter().map(|m| (Some(m.clone()), root.for_mall(m))).collect();
            if c.chain_tables {
                v.push((None, root));
            }
            v
        }
    }
}

/// Lists the published objects the plan selects, with their versions.
fn published(sources: &[(Option<String>, Location)], plan: &ExportPlan) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for (mall, out) in sources {
        // A chain's root holds the chain tables, its malls the others.
        let tables = plan
            .tables
            .iter()
            .filter(|t| !t.is_view() && (t.kind == "chain") == (plan.chain.is_some() && mall.is_none()));
        for t in tables {
            for e in out.list_under(&t.name)? {
                let version = e.e_tag.clone().unwrap_or_else(|| format!("{}-{}", e.size, e.last_modified));
                let part = |date| Part {
                    table: t.name.clone(),
                    mall: mall.clone(),
                    date,
                    rel: e.rel.clone(),
                    version: version.clone(),
                };
                if t.is_snapshot() {
                    if e.rel == tables::snapshot_rel(&t.name) {
                        parts.push(part(None));
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
                    parts.push(part(Some(d)));
                }
            }
        }
    }
    Ok(parts)
}

/// A database the tables are exported to. Each method is one transaction (or DDL).
trait Sink {
    /// Creates the schema, the tables that are missing and the state table; checks the
    /// columns of those that exist. Returns the recorded versions by (table, part).
    async fn prepare(&mut self, tables: &[TableSchema]) -> Result<BTreeMap<(String, String), String>>;
    /// Replaces one date of a table (of one mall in a chain) by `rows` and records
    /// `version`, in one transaction.
    async fn replace_date(&mut self, t: &TableSchema, u: Unit<'_>, rows: &Rows, version: &str) -> Result<()>;
    /// Deletes one date of a table and its record, in one transaction.
    async fn retract_date(&mut self, t: &TableSchema, u: Unit<'_>) -> Result<()>;
    /// Replaces a snapshot table's contents (a mall's rows in a chain) by `rows` (upsert by
    /// key, delete gone keys) and records `version`, in one transaction.
    async fn replace_snapshot(&mut self, t: &TableSchema, u: Unit<'_>, rows: &Rows, version: &str) -> Result<()>;
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
    let table = |name: &str| plan.tables.iter().find(|t| t.name == name && !t.is_view());
    let mut selected = BTreeMap::new();
    for ((name, part), version) in recorded {
        let Some(t) = table(&name) else { continue };
        let Some(u) = Unit::parse(&part) else {
            bail_usage!("export: {target} records part '{part}' of {name}, which footfall does not write");
        };
        // A table exported as a snapshot before and partitioned now (data_quality, state
        // format 7), or the reverse, cannot be updated part by part.
        if t.is_snapshot() != u.date.is_none() {
            bail_usage!(
                "export: table {name} in {target} was exported with another layout (as {}); drop it once and export again",
                if u.date.is_none() { "one snapshot" } else { "dated partitions" }
            );
        }
        if plan.covers(t, &u) {
            selected.insert((name.clone(), part.clone()), version);
        }
    }
    let sources = sources(out, plan);
    let actions = diff(published(&sources, plan)?, &selected);
    let mut report = ExportReport { unchanged: actions.unchanged, ..Default::default() };
    let bar = progress.bar((actions.load.len() + actions.retract.len()) as u64, "exporting");
    for (name, part) in &actions.retract {
        let (Some(t), Some(u)) = (table(name), Unit::parse(part)) else { continue };
        block_on(sink.retract_date(t, u)).with_context(|| format!("cannot remove {name} {part} from {target}"))?;
        report.retracted += 1;
        bar.inc(1);
    }
    for p in &actions.load {
        let t = table(&p.table).expect("published lists the plan's tables");
        let from = &sources.iter().find(|(m, _)| *m == p.mall).expect("a part comes from a source").1;
        let df =
            tables::read_parquet(from.get(&p.rel)?).with_context(|| format!("cannot read {}", from.show(&p.rel)))?;
        let df = match p.date {
            Some(d) => tables::with_partition_date(df, d)?,
            None => df,
        };
        let df = match &p.mall {
            Some(m) => {
                let mut df = df;
                df.with_column(polars::prelude::Column::new(MALL.into(), vec![m.as_str(); df.height()]))?;
                df
            }
            None => df,
        };
        let rows = Rows::new(t, &df).with_context(|| format!("cannot convert {}", from.show(&p.rel)))?;
        let u = p.unit();
        match p.date {
            Some(_) => block_on(sink.replace_date(t, u, &rows, &p.version)),
            None => block_on(sink.replace_snapshot(t, u, &rows, &p.version)),
        }
        .with_context(|| format!("cannot export {} {} to {target}", p.table, u.part()))?;
        if p.date.is_some() {
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
    for (name, ty) in want {
        match found.iter().find(|(n, _)| n == name) {
            None => bail_usage!("export: table {table} exists without column {name} ({ty}); footfall does not ALTER tables — drop or migrate it"),
            Some((_, t)) if !t.eq_ignore_ascii_case(ty) => {
                bail_usage!("export: table {table}, column {name} is {t} in the database, footfall writes {ty}")
            }
            _ => {}
        }
    }
    // A chain's table in a single mall's export (or the reverse) shows here, as column `mall`.
    if let Some((name, ty)) = found.iter().find(|(n, _)| !want.iter().any(|(w, _)| w == n)) {
        bail_usage!("export: table {table} has column {name} ({ty}) that footfall does not write here");
    }
    for (i, (name, _)) in want.iter().enumerate() {
        if let Some(j) = found.iter().position(|(n, _)| n == name).filter(|j| *j != i) {
            bail_usage!(
                "export: table {table}, column {name} is at position {} in the database, footfall writes it at {}",
                j + 1,
                i + 1
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(t: &str, p: &str, v: &str) -> Part {
        let u = Unit::parse(p).unwrap();
        Part { table: t.into(), mall: u.mall.map(Into::into), date: u.date, rel: format!("{t}/{p}"), version: v.into() }
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
    fn a_unit_is_its_part_key_and_selects_only_its_rows() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        for (u, part, pg) in [
            (Unit { mall: None, date: Some(d) }, "2026-03-29", Some("\"date\" = '2026-03-29'")),
            (Unit { mall: None, date: None }, "snapshot", None),
            (
                Unit { mall: Some("east"), date: Some(d) },
                "mall=east/2026-03-29",
                Some("t.\"mall\" = 'east' AND t.\"date\" = '2026-03-29'"),
            ),
            (Unit { mall: Some("x-1"), date: None }, "mall=x-1/snapshot", Some("t.\"mall\" = 'x-1'")),
        ] {
            assert_eq!(u.part(), part);
            assert_eq!(Unit::parse(part), Some(u));
            let qual = if u.mall.is_some() { "t." } else { "" };
            assert_eq!(u.rows_where(Kind::Postgres, qual).as_deref(), pg);
        }
        for bad in ["2026-13-01", "mall=east", "mall=east/later", ""] {
            assert_eq!(Unit::parse(bad), None, "{bad}");
        }
        // A chain plan covers its malls' units of mall tables, and chain tables only with them.
        let plan = ExportPlan::new("postgresql://u@h/d", None, None, None, None).unwrap();
        let scope = ChainScope { malls: vec!["east".into()], chain_tables: false };
        let chain = plan.clone().in_chain(scope, true);
        let daily = chain.tables.iter().find(|t| t.name == "mall_daily_visitors").unwrap();
        assert_eq!((daily.columns[0].name.as_str(), daily.primary_key[0].as_str()), ("mall", "mall"));
        let overlap = chain.tables.iter().find(|t| t.name == "mall_overlap_daily").unwrap();
        assert!(overlap.column("mall").is_none());
        let at = |m| Unit { mall: m, date: Some(d) };
        assert!(chain.covers(daily, &at(Some("east"))));
        assert!(!chain.covers(daily, &at(Some("west"))) && !chain.covers(daily, &at(None)));
        assert!(!chain.covers(overlap, &at(None)));
        assert!(chain.chain_tables_only().covers(overlap, &at(None)));
        assert!(!chain.chain_tables_only().covers(daily, &at(Some("east"))));
        assert!(plan.covers(crate::schema::get("mall_daily_visitors").unwrap(), &at(None)));
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
