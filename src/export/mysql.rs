//! MySQL and MariaDB through mysql_async (TLS by rustls): batched multi-row INSERTs into
//! each date inside one transaction; snapshots through a temporary table.
//!
//! MySQL has no timezone-aware timestamp type without a 2038 limit, so timestamps are
//! `DATETIME(6)` holding UTC. Tables use `utf8mb4_bin` so keys compare as footfall's do
//! (byte-exact, case-sensitive).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::{Datelike, Timelike};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder, Params, SslOpts, Value};

use super::rows::{Cell, Rows};
use super::{check_columns, check_view_slot, column_list, ident, view_sql, Kind, Sink, Target, Unit, STATE_TABLE};
use crate::bail_usage;
use crate::fault;
use crate::schema::TableSchema;

/// At most this many placeholders in one INSERT (the protocol allows 65,535).
const MAX_PARAMS: usize = 30_000;
/// At most this many rows in one INSERT.
const MAX_ROWS: usize = 2_000;

pub struct My {
    conn: Option<Conn>,
    schema: String,
}

/// `(database type for DDL, information_schema DATA_TYPE)`; `key_len` is the VARCHAR length
/// of a string in the primary key (InnoDB limits a key to 3,072 bytes).
fn my_type(ty: &str, key_len: Option<usize>) -> (String, &'static str) {
    match ty {
        "boolean" => ("BOOLEAN".into(), "tinyint"),
        "int32" => ("INT".into(), "int"),
        "int64" => ("BIGINT".into(), "bigint"),
        "float64" => ("DOUBLE".into(), "double"),
        "date" => ("DATE".into(), "date"),
        "timestamp" => ("DATETIME(6)".into(), "datetime"),
        "decimal" => ("DECIMAL(18,2)".into(), "decimal"),
        _ => match key_len {
            Some(n) => (format!("VARCHAR({n})"), "varchar"),
            None => ("TEXT".into(), "text"),
        },
    }
}

/// The VARCHAR length of key strings of a table: 255, or less when several strings share
/// the key (4 bytes a character).
fn key_len(t: &TableSchema) -> usize {
    let n = t.primary_key.iter().filter(|k| t.column(k).is_some_and(|c| c.ty == "string")).count().max(1);
    (3000 / (4 * n)).min(255)
}

fn col_type(t: &TableSchema, c: &crate::schema::ColumnSchema) -> (String, &'static str) {
    let in_key = t.primary_key.contains(&c.name);
    my_type(&c.ty, in_key.then(|| key_len(t)))
}

fn value(c: Cell) -> Value {
    match c {
        Cell::Null => Value::NULL,
        Cell::Bool(b) => Value::Int(b as i64),
        Cell::I32(v) => Value::Int(v as i64),
        Cell::I64(v) => Value::Int(v),
        Cell::F64(v) => Value::Double(v),
        Cell::Str(s) => Value::Bytes(s.as_bytes().to_vec()),
        Cell::Cents(c) => Value::Bytes(super::rows::cents_text(c).into_bytes()),
        Cell::Date(d) => Value::Date(d.year() as u16, d.month() as u8, d.day() as u8, 0, 0, 0, 0),
        Cell::Ts(t) => Value::Date(
            t.year() as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.timestamp_subsec_micros(),
        ),
    }
}

impl My {
    pub async fn connect(t: &Target, schema: &str) -> Result<My> {
        let mut o = OptsBuilder::default()
            .ip_or_hostname(t.host.clone())
            .tcp_port(t.port)
            .user(Some(t.user.clone()))
            .pass(t.password.clone())
            .db_name(Some(t.database.clone()))
            .prefer_socket(false)
            .init(vec!["SET SESSION time_zone = '+00:00'", "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'"]);
        for (k, v) in t.query_pairs() {
            o = match (k.as_str(), v.as_str()) {
                ("ssl", "require") => o.ssl_opts(SslOpts::default()),
                ("ssl", "disable") => o.ssl_opts(None),
                _ => bail_usage!("export target {}: unsupported parameter {k}={v} (ssl=require|disable)", t.show()),
            };
        }
        let conn = tokio::time::timeout(std::time::Duration::from_secs(10), Conn::new(o))
            .await
            .map_err(|_| anyhow::anyhow!("timed out after 10 s"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to MySQL at {}", t.show()))?;
        Ok(My { conn: Some(conn), schema: schema.to_string() })
    }

    /// Closes the connection (an open transaction, after an error, is rolled back).
    pub async fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.disconnect().await;
        }
    }

    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("connection open until close")
    }

    fn q(&self, table: &str) -> String {
        format!("{}.{}", ident(Kind::Mysql, &self.schema), ident(Kind::Mysql, table))
    }

    /// Multi-row INSERTs of `rows` into `table` (already quoted).
    async fn insert_rows(&mut self, table: &str, t: &TableSchema, rows: &Rows) -> Result<()> {
        let w = rows.width();
        let batch = (MAX_PARAMS / w).clamp(1, MAX_ROWS);
        let one = format!("({})", vec!["?"; w].join(", "));
        let head = format!("INSERT INTO {table} ({}) VALUES ", column_list(Kind::Mysql, t));
        let mut start = 0;
        while start < rows.height {
            let n = batch.min(rows.height - start);
            let sql = format!("{head}{}", vec![one.as_str(); n].join(", "));
            let mut vals = Vec::with_capacity(n * w);
            for i in start..start + n {
                vals.extend((0..w).map(|j| value(rows.cell(i, j))));
            }
            self.conn().exec_drop(sql, Params::Positional(vals)).await?;
            start += n;
        }
        Ok(())
    }

    async fn record(&mut self, table: &str, part: &str, version: &str, n: usize) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (table_name, part, version, row_count, exported_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6)) \
             ON DUPLICATE KEY UPDATE version = VALUES(version), row_count = VALUES(row_count), exported_at = VALUES(exported_at)",
            self.q(STATE_TABLE)
        );
        self.conn().exec_drop(sql, (table, part, version, n as i64)).await?;
        Ok(())
    }
}

impl Sink for My {
    async fn prepare(&mut self, tables: &[TableSchema]) -> Result<BTreeMap<(String, String), String>> {
        // The malls of a chain export at once: one prepares the tables at a time.
        let got: Option<i64> = self.conn().query_first("SELECT GET_LOCK('footfall_export_prepare', 60)").await?;
        if got != Some(1) {
            anyhow::bail!("another footfall export held the table lock for 60 s");
        }
        let r = self.prepare_locked(tables).await;
        self.conn().query_drop("DO RELEASE_LOCK('footfall_export_prepare')").await?;
        r
    }

    async fn replace_date(&mut self, t: &TableSchema, u: Unit<'_>, rows: &Rows, version: &str) -> Result<()> {
        let table = self.q(&t.name);
        let rows_where = u.rows_where(Kind::Mysql, "").expect("a date selects rows");
        self.conn().query_drop("START TRANSACTION").await?;
        self.conn().query_drop(format!("DELETE FROM {table} WHERE {rows_where}")).await?;
        self.insert_rows(&table, t, rows).await?;
        self.record(&t.name, &u.part(), version, rows.height).await?;
        fault::point("export-before-commit");
        self.conn().query_drop("COMMIT").await?;
        Ok(())
    }

    async fn retract_date(&mut self, t: &TableSchema, u: Unit<'_>) -> Result<()> {
        let (table, state) = (self.q(&t.name), self.q(STATE_TABLE));
        let rows_where = u.rows_where(Kind::Mysql, "").expect("a date selects rows");
        self.conn().query_drop("START TRANSACTION").await?;
        self.conn().query_drop(format!("DELETE FROM {table} WHERE {rows_where}")).await?;
        self.conn()
            .exec_drop(format!("DELETE FROM {state} WHERE table_name = ? AND part = ?"), (t.name.clone(), u.part()))
            .await?;
        self.conn().query_drop("COMMIT").await?;
        Ok(())
    }

    async fn replace_snapshot(&mut self, t: &TableSchema, u: Unit<'_>, rows: &Rows, version: &str) -> Result<()> {
        let k = Kind::Mysql;
        let table = self.q(&t.name);
        let load = self.q("footfall_load");
        let cols = column_list(k, t);
        let key = |c: &String| t.primary_key.contains(c);
        let pk: Vec<String> = t.primary_key.iter().map(|c| ident(k, c)).collect();
        let sets: Vec<String> = t
            .columns
            .iter()
            .filter(|c| !key(&c.name))
            .map(|c| format!("{0} = VALUES({0})", ident(k, &c.name)))
            .collect();
        // With no other column, "updating" the first key column to itself is the MySQL no-op.
        let sets = if sets.is_empty() { format!("{0} = {0}", pk[0]) } else { sets.join(", ") };
        let on: Vec<String> = pk.iter().map(|c| format!("l.{c} = t.{c}")).collect();
        // Only this mall's gone keys, in a chain.
        let mine = u.rows_where(k, "t.").map(|w| format!(" AND {w}")).unwrap_or_default();
        self.conn().query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {load}")).await?;
        // CREATE TEMPORARY TABLE does not end a transaction (other DDL would).
        self.conn().query_drop("START TRANSACTION").await?;
        self.conn().query_drop(format!("CREATE TEMPORARY TABLE {load} LIKE {table}")).await?;
        self.insert_rows(&load, t, rows).await?;
        self.conn()
            .query_drop(format!(
                "INSERT INTO {table} ({cols}) SELECT {cols} FROM {load} ON DUPLICATE KEY UPDATE {sets}"
            ))
            .await?;
        self.conn()
            .query_drop(format!(
                "DELETE t FROM {table} t LEFT JOIN {load} l ON {} WHERE l.{} IS NULL{mine}",
                on.join(" AND "),
                pk[0]
            ))
            .await?;
        self.record(&t.name, &u.part(), version, rows.height).await?;
        fault::point("export-before-commit");
        self.conn().query_drop("COMMIT").await?;
        self.conn().query_drop(format!("DROP TEMPORARY TABLE {load}")).await?;
        Ok(())
    }
}

impl My {
    async fn prepare_locked(&mut self, tables: &[TableSchema]) -> Result<BTreeMap<(String, String), String>> {
        let k = Kind::Mysql;
        let db = ident(k, &self.schema);
        let state = self.q(STATE_TABLE);
        self.conn().query_drop(format!("CREATE DATABASE IF NOT EXISTS {db}")).await?;
        self.conn()
            .query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {state} (table_name VARCHAR(64) NOT NULL, part VARCHAR(128) NOT NULL, \
                 version VARCHAR(255) NOT NULL, row_count BIGINT NOT NULL, exported_at DATETIME(6) NOT NULL, \
                 PRIMARY KEY (table_name, part)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            ))
            .await?;
        // Before chains a part was at most `snapshot` or a date: widen footfall's own table.
        let schema = self.schema.clone();
        let part_len: Option<i64> = self
            .conn()
            .exec_first(
                "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.columns \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'part'",
                (schema, STATE_TABLE),
            )
            .await?;
        if part_len.is_some_and(|n| n < 128) {
            self.conn().query_drop(format!("ALTER TABLE {state} MODIFY part VARCHAR(128) NOT NULL")).await?;
        }
        for t in tables.iter().filter(|t| !t.is_view()) {
            let schema = self.schema.clone();
            let found: Vec<(String, String)> = self
                .conn()
                .exec(
                    "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR) FROM information_schema.columns \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                    (schema, t.name.clone()),
                )
                .await?;
            if found.is_empty() {
                let cols: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| {
                        let null = if c.nullable { " NULL" } else { " NOT NULL" };
                        format!("{} {}{null}", ident(k, &c.name), col_type(t, c).0)
                    })
                    .collect();
                let pk: Vec<String> = t.primary_key.iter().map(|c| ident(k, c)).collect();
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({})) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                    self.q(&t.name),
                    cols.join(", "),
                    pk.join(", ")
                );
                self.conn().query_drop(sql).await?;
            } else {
                let want: Vec<(String, String)> =
                    t.columns.iter().map(|c| (c.name.clone(), col_type(t, c).1.to_string())).collect();
                check_columns(&format!("{}.{}", self.schema, t.name), &found, &want)?;
            }
        }
        for t in tables.iter().filter(|t| t.is_view()) {
            let schema = self.schema.clone();
            let kind: Option<String> = self
                .conn()
                .exec_first(
                    "SELECT CAST(TABLE_TYPE AS CHAR) FROM information_schema.tables WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                    (schema, t.name.clone()),
                )
                .await?;
            check_view_slot(&format!("{}.{}", self.schema, t.name), kind.as_deref())?;
            let body = view_sql(k, &|n| self.q(n), t);
            let sql = format!("CREATE OR REPLACE VIEW {} AS {body}", self.q(&t.name));
            self.conn().query_drop(sql).await?;
        }
        let rows: Vec<(String, String, String)> =
            self.conn().query(format!("SELECT table_name, part, version FROM {state}")).await?;
        Ok(rows.into_iter().map(|(t, p, v)| ((t, p), v)).collect())
    }
}
