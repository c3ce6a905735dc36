//! PostgreSQL through tokio-postgres (TLS by rustls): binary COPY into each date inside
//! one transaction; snapshots through a temporary table.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::BytesMut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Client;

use super::rows::{Cell, Rows};
use super::{check_columns, check_view_slot, column_list, ident, view_sql, Kind, Sink, Target, Unit, STATE_TABLE};
use crate::bail_usage;
use crate::fault;
use crate::schema::TableSchema;

pub struct Pg {
    client: Client,
    schema: String,
}

/// `(database type for DDL, information_schema.columns.data_type, COPY type)`.
fn pg_type(ty: &str) -> (&'static str, &'static str, Type) {
    match ty {
        "boolean" => ("BOOLEAN", "boolean", Type::BOOL),
        "int32" => ("INTEGER", "integer", Type::INT4),
        "int64" => ("BIGINT", "bigint", Type::INT8),
        "float64" => ("DOUBLE PRECISION", "double precision", Type::FLOAT8),
        "date" => ("DATE", "date", Type::DATE),
        "timestamp" => ("TIMESTAMPTZ", "timestamp with time zone", Type::TIMESTAMPTZ),
        "decimal" => ("NUMERIC(18,2)", "numeric", Type::NUMERIC),
        _ => ("TEXT", "text", Type::TEXT),
    }
}

impl Pg {
    pub async fn connect(t: &Target, schema: &str) -> Result<Pg> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&t.host).port(t.port).user(&t.user).dbname(&t.database);
        cfg.application_name("footfall").connect_timeout(std::time::Duration::from_secs(10));
        if let Some(p) = &t.password {
            cfg.password(p.as_bytes());
        }
        for (k, v) in t.query_pairs() {
            match (k.as_str(), v.as_str()) {
                ("sslmode", "disable") => cfg.ssl_mode(SslMode::Disable),
                ("sslmode", "prefer") => cfg.ssl_mode(SslMode::Prefer),
                ("sslmode", "require") => cfg.ssl_mode(SslMode::Require),
                _ => bail_usage!(
                    "export target {}: unsupported parameter {k}={v} (sslmode=disable|prefer|require)",
                    t.show()
                ),
            };
        }
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config());
        let (client, conn) =
            cfg.connect(tls).await.with_context(|| format!("cannot connect to PostgreSQL at {}", t.show()))?;
        tokio::spawn(conn);
        Ok(Pg { client, schema: schema.to_string() })
    }

    fn q(&self, table: &str) -> String {
        format!("{}.{}", ident(Kind::Postgres, &self.schema), ident(Kind::Postgres, table))
    }
}

/// Trusts the system's certificate authorities; the ring provider is the one already in
/// the tree.
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl ToSql for Cell<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::I32(v) => v.to_sql(ty, out),
            Cell::I64(v) => v.to_sql(ty, out),
            Cell::F64(v) => v.to_sql(ty, out),
            Cell::Str(v) => v.to_sql(ty, out),
            Cell::Date(v) => v.to_sql(ty, out),
            Cell::Ts(v) => v.to_sql(ty, out),
            Cell::Cents(c) => {
                out.extend_from_slice(&numeric_cents(*c));
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// PostgreSQL's binary NUMERIC of `cents` with 2 decimal places: ndigits, weight, sign,
/// dscale, then base-10000 digits from the most significant, trailing zero digits left out.
fn numeric_cents(cents: i64) -> Vec<u8> {
    let a = cents.unsigned_abs();
    let (mut int, frac) = (a / 100, (a % 100) as i16 * 100);
    let mut digits: Vec<i16> = Vec::new();
    while int > 0 {
        digits.insert(0, (int % 10_000) as i16);
        int /= 10_000;
    }
    let weight = digits.len() as i16 - 1;
    digits.push(frac);
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let sign: u16 = if cents < 0 { 0x4000 } else { 0 };
    let weight = if digits.is_empty() { 0 } else { weight };
    let mut b = Vec::with_capacity(8 + 2 * digits.len());
    for v in [digits.len() as i16, weight, sign as i16, 2] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    for d in digits {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b
}

/// COPYs `rows` into `table` (already quoted).
async fn copy_rows(c: &tokio_postgres::Transaction<'_>, table: &str, t: &TableSchema, rows: &Rows) -> Result<()> {
    let types: Vec<Type> = t.columns.iter().map(|c| pg_type(&c.ty).2).collect();
    let sink = c.copy_in(&format!("COPY {table} ({}) FROM STDIN BINARY", column_list(Kind::Postgres, t))).await?;
    let writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    let mut writer = writer;
    let mut cells: Vec<Cell> = Vec::with_capacity(rows.width());
    for i in 0..rows.height {
        cells.clear();
        cells.extend((0..rows.width()).map(|j| rows.cell(i, j)));
        let refs: Vec<&(dyn ToSql + Sync)> = cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await?;
    Ok(())
}

impl Sink for Pg {
    async fn prepare(&mut self, tables: &[TableSchema]) -> Result<BTreeMap<(String, String), String>> {
        // The malls of a chain export at once: one prepares the tables at a time (concurrent
        // CREATE TABLE IF NOT EXISTS of one name can fail).
        self.client.execute("SELECT pg_advisory_lock($1)", &[&PREPARE_LOCK]).await?;
        let r = self.prepare_locked(tables).await;
        self.client.execute("SELECT pg_advisory_unlock($1)", &[&PREPARE_LOCK]).await?;
        r
    }

    async fn replace_date(&mut self, t: &TableSchema, u: Unit<'_>, rows: &Rows, version: &str) -> Result<()> {
        let table = self.q(&t.name);
        let record = Pg::record_sql(&self.schema);
        let rows_where = u.rows_where(Kind::Postgres, "").expect("a date selects rows");
        let tx = self.client.transaction().await?;
        tx.execute(&format!("DELETE FROM {table} WHERE {rows_where}"), &[]).await?;
        copy_rows(&tx, &table, t, rows).await?;
        tx.execute(&record, &[&t.name, &u.part(), &version, &(rows.height as i64)]).await?;
        fault::point("export-before-commit");
        tx.commit().await?;
        Ok(())
    }

    async fn retract_date(&mut self, t: &TableSchema, u: Unit<'_>) -> Result<()> {
        let table = self.q(&t.name);
        let state = self.q(STATE_TABLE);
        let rows_where = u.rows_where(Kind::Postgres, "").expect("a date selects rows");
        let tx = self.client.transaction().await?;
        tx.execute(&format!("DELETE FROM {table} WHERE {rows_where}"), &[]).await?;
        tx.execute(&format!("DELETE FROM {state} WHERE table_name = $1 AND part = $2"), &[&t.name, &u.part()]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_snapshot(&mut self, t: &TableSchema, u: Unit<'_>, rows: &Rows, version: &str) -> Result<()> {
        let k = Kind::Postgres;
        let table = self.q(&t.name);
        let record = Pg::record_sql(&self.schema);
        let cols = column_list(k, t);
        let key = |c: &String| t.primary_key.contains(c);
        let sets: Vec<String> = t
            .columns
            .iter()
            .filter(|c| !key(&c.name))
            .map(|c| format!("{0} = EXCLUDED.{0}", ident(k, &c.name)))
            .collect();
        let pk: Vec<String> = t.primary_key.iter().map(|c| ident(k, c)).collect();
        let on_conflict =
            if sets.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", sets.join(", ")) };
        let matches: Vec<String> = pk.iter().map(|c| format!("l.{c} = t.{c}")).collect();
        // Only this mall's gone keys, in a chain.
        let mine = u.rows_where(k, "t.").map(|w| format!("{w} AND ")).unwrap_or_default();
        let tx = self.client.transaction().await?;
        tx.batch_execute(&format!("CREATE TEMP TABLE footfall_load (LIKE {table}) ON COMMIT DROP")).await?;
        copy_rows(&tx, "footfall_load", t, rows).await?;
        tx.batch_execute(&format!(
            "INSERT INTO {table} ({cols}) SELECT {cols} FROM footfall_load ON CONFLICT ({}) {on_conflict}; \
             DELETE FROM {table} t WHERE {mine}NOT EXISTS (SELECT 1 FROM footfall_load l WHERE {})",
            pk.join(", "),
            matches.join(" AND ")
        ))
        .await?;
        tx.execute(&record, &[&t.name, &u.part(), &version, &(rows.height as i64)]).await?;
        fault::point("export-before-commit");
        tx.commit().await?;
        Ok(())
    }
}

/// The advisory lock `prepare` holds (any constant: footfall's among the database's users).
const PREPARE_LOCK: i64 = 0x666f_6f74_6661_6c6c;

impl Pg {
    async fn prepare_locked(&mut self, tables: &[TableSchema]) -> Result<BTreeMap<(String, String), String>> {
        let k = Kind::Postgres;
        self.client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(k, &self.schema))).await?;
        self.client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} (table_name TEXT NOT NULL, part TEXT NOT NULL, version TEXT NOT NULL, \
                 row_count BIGINT NOT NULL, exported_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (table_name, part))",
                self.q(STATE_TABLE)
            ))
            .await?;
        for t in tables.iter().filter(|t| !t.is_view()) {
            let found: Vec<(String, String)> = self
                .client
                .query(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                    &[&self.schema, &t.name],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            if found.is_empty() {
                let cols: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| {
                        let null = if c.nullable { "" } else { " NOT NULL" };
                        format!("{} {}{null}", ident(k, &c.name), pg_type(&c.ty).0)
                    })
                    .collect();
                let pk: Vec<String> = t.primary_key.iter().map(|c| ident(k, c)).collect();
                self.client
                    .batch_execute(&format!(
                        "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))",
                        self.q(&t.name),
                        cols.join(", "),
                        pk.join(", ")
                    ))
                    .await?;
            } else {
                let want: Vec<(String, String)> =
                    t.columns.iter().map(|c| (c.name.clone(), pg_type(&c.ty).1.to_string())).collect();
                check_columns(&format!("{}.{}", self.schema, t.name), &found, &want)?;
            }
        }
        for t in tables.iter().filter(|t| t.is_view()) {
            let kind = self
                .client
                .query_opt(
                    "SELECT table_type::text FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
                    &[&self.schema, &t.name],
                )
                .await?
                .map(|r| r.get::<_, String>(0));
            check_view_slot(&format!("{}.{}", self.schema, t.name), kind.as_deref())?;
            let body = view_sql(k, &|n| self.q(n), t);
            self.client.batch_execute(&format!("CREATE OR REPLACE VIEW {} AS {body}", self.q(&t.name))).await?;
        }
        let rows =
            self.client.query(&format!("SELECT table_name, part, version FROM {}", self.q(STATE_TABLE)), &[]).await?;
        Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numeric_is_base_10000_from_the_top() {
        let n = |c| super::numeric_cents(c);
        // 12345678.90: digits 1234 5678 9000, weight 1.
        assert_eq!(n(1_234_567_890), [0, 3, 0, 1, 0, 0, 0, 2, 0x04, 0xd2, 0x16, 0x2e, 0x23, 0x28]);
        // -0.05: one digit 500 at weight -1.
        assert_eq!(n(-5), [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4]);
        // 0 and 10000.00 (digit 1 at weight 1, zeros left out).
        assert_eq!(n(0), [0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(n(1_000_000), [0, 1, 0, 1, 0, 0, 0, 2, 0, 1]);
    }
}

impl Pg {
    fn record_sql(schema: &str) -> String {
        format!(
            "INSERT INTO {}.{} (table_name, part, version, row_count, exported_at) VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (table_name, part) DO UPDATE SET version = EXCLUDED.version, \
             row_count = EXCLUDED.row_count, exported_at = EXCLUDED.exported_at",
            ident(Kind::Postgres, schema),
            ident(Kind::Postgres, STATE_TABLE)
        )
    }
}
