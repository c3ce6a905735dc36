//! One sales file (Parquet or CSV) → its accepted transactions, every other row counted by
//! reason. Money is parsed to integer cents, never through a float unless the file stores a
//! float (then it is rounded to the cent).

use std::collections::HashSet;
use std::io::Cursor;

use anyhow::{bail, Result};
use bytes::Bytes;
use polars::prelude::*;

use crate::timeutil::LocalClock;

/// Why a sales row was rejected; the first failing check in this order names the reason.
pub const REASONS: [&str; 7] = [
    "transaction_id_missing",
    "shop_code_missing",
    "shop_unknown",
    "sold_at_missing",
    "sold_at_invalid",
    "amount_missing",
    "amount_invalid",
];

/// The columns a sales file must have.
pub const REQUIRED: [&str; 4] = ["transaction_id", "shop_code", "sold_at", "amount"];

/// Row counts of one sales file (`data_quality`, source `sales`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SalesQuality {
    pub rows_read: i64,
    pub rows_accepted: i64,
    /// Indexed like [`REASONS`].
    pub rejected: [i64; REASONS.len()],
}

/// What the checks need: the mall's clock, the valid time window, the known shops (empty:
/// no shop dimension, every shop is accepted).
pub struct SalesCtx<'a> {
    pub clock: LocalClock,
    pub valid_times: (i64, i64),
    pub known_shops: &'a HashSet<String>,
}

/// A file's accepted rows: `transaction_id`, `shop_code`, `second` (UTC epoch), `day`
/// (local), `cents` (i64), `row` (its position in the file: the later row of an id wins).
pub struct Parsed {
    pub rows: DataFrame,
    pub quality: SalesQuality,
}

/// Reads a file's bytes (`.csv`: CSV with a header, anything else Parquet). A missing column
/// or an unreadable file is an error naming the file.
pub fn parse(bytes: Bytes, name: &str, csv: bool, ctx: &mut SalesCtx) -> Result<Parsed> {
    let df = if csv {
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(Cursor::new(bytes))
            .finish()
            .map_err(|e| anyhow::anyhow!("{name}: unreadable CSV: {e}"))?
    } else {
        ParquetReader::new(Cursor::new(bytes))
            .finish()
            .map_err(|e| anyhow::anyhow!("{name}: unreadable Parquet: {e}"))?
    };
    for c in REQUIRED {
        if df.column(c).is_err() {
            bail!("{name}: missing required column '{c}'");
        }
    }
    let text = |c: &str| -> Result<StringChunked> {
        let s = df.column(c)?.as_materialized_series();
        match s.dtype() {
            DataType::String => Ok(s.str()?.clone()),
            dt if dt.is_integer() => Ok(s.cast(&DataType::String)?.str()?.clone()),
            dt => bail!("{name}: column '{c}' has type {dt}; accepted: string, integer"),
        }
    };
    let (ids, shops) = (text("transaction_id")?, text("shop_code")?);
    let times = seconds(df.column("sold_at")?.as_materialized_series(), name)?;
    let cents = amounts(df.column("amount")?.as_materialized_series(), name)?;
    let n = df.height();
    let mut q = SalesQuality { rows_read: n as i64, ..Default::default() };
    let (mut o_id, mut o_shop, mut o_sec, mut o_day, mut o_cents, mut o_row) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (t_min, t_max) = ctx.valid_times;
    for i in 0..n {
        let id = ids.get(i).map(str::trim).filter(|s| !s.is_empty());
        let shop = shops.get(i).map(str::trim).filter(|s| !s.is_empty());
        let verdict = match (id, shop) {
            (None, _) => Err(0),
            (_, None) => Err(1),
            (_, Some(s)) if !ctx.known_shops.is_empty() && !ctx.known_shops.contains(s) => Err(2),
            _ => match (&times[i], &cents[i]) {
                (Value::Missing, _) => Err(3),
                (Value::Invalid, _) => Err(4),
                (Value::Ok(t), _) if *t < t_min || *t > t_max => Err(4),
                (_, Value::Missing) => Err(5),
                (_, Value::Invalid) => Err(6),
                (Value::Ok(t), Value::Ok(c)) => Ok((*t, *c)),
            },
        };
        match verdict {
            Err(r) => q.rejected[r] += 1,
            Ok((t, c)) => {
                o_id.push(id.unwrap_or_default().to_string());
                o_shop.push(shop.unwrap_or_default().to_string());
                o_sec.push(t);
                o_day.push(ctx.clock.local_days(t));
                o_cents.push(c);
                o_row.push(i as i64);
            }
        }
    }
    q.rows_accepted = o_id.len() as i64;
    let rows = DataFrame::new(
        o_id.len(),
        vec![
            Column::new("transaction_id".into(), o_id),
            Column::new("shop_code".into(), o_shop),
            Column::new("second".into(), o_sec),
            Column::new("day".into(), o_day),
            Column::new("cents".into(), o_cents),
            Column::new("row".into(), o_row),
        ],
    )?;
    Ok(Parsed { rows, quality: q })
}

/// A parsed cell.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Missing,
    Invalid,
    Ok(i64),
}

/// `sold_at` as UTC epoch seconds: integer seconds, decimal text (as `occur_time`), or a
/// timestamp (truncated to its second).
fn seconds(s: &Series, name: &str) -> Result<Vec<Value>> {
    let of = |v: Option<i64>| v.map_or(Value::Missing, Value::Ok);
    Ok(match s.dtype() {
        dt if dt.is_integer() => s.cast(&DataType::Int64)?.i64()?.iter().map(of).collect(),
        DataType::String => s
            .str()?
            .iter()
            .map(|v| match v.map(str::trim) {
                None | Some("") => Value::Missing,
                Some(t) => crate::pipeline::ingest::parse_epoch_text(t).map_or(Value::Invalid, Value::Ok),
            })
            .collect(),
        DataType::Datetime(unit, _) => {
            let per_s = match unit {
                TimeUnit::Milliseconds => 1_000,
                TimeUnit::Microseconds => 1_000_000,
                TimeUnit::Nanoseconds => 1_000_000_000,
            };
            s.to_physical_repr().i64()?.iter().map(|v| of(v.map(|v| v.div_euclid(per_s)))).collect()
        }
        dt => bail!("{name}: column 'sold_at' has type {dt}; accepted: integer, string, timestamp"),
    })
}

/// The largest amount accepted, in cents (10^15 currency units: far beyond any sale, and
/// sums of a year of rows stay far inside i64).
const MAX_CENTS: i64 = 100_000_000_000_000_000;

/// `amount` in cents: decimal text with at most two decimals, an integer, a decimal column
/// (exact), or a float (rounded to the cent).
fn amounts(s: &Series, name: &str) -> Result<Vec<Value>> {
    let bound = |c: Option<i64>| match c {
        Some(c) if c.abs() <= MAX_CENTS => Value::Ok(c),
        _ => Value::Invalid,
    };
    Ok(match s.dtype() {
        DataType::String => s
            .str()?
            .iter()
            .map(|v| match v.map(str::trim) {
                None | Some("") => Value::Missing,
                Some(t) => bound(cents_of_text(t)),
            })
            .collect(),
        dt if dt.is_integer() => s
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|v| v.map_or(Value::Missing, |v| bound(v.checked_mul(100))))
            .collect(),
        DataType::Float32 | DataType::Float64 => s
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| match v {
                None => Value::Missing,
                Some(f) if f.is_finite() && f.abs() < 1e15 => bound(Some((f * 100.0).round() as i64)),
                Some(_) => Value::Invalid,
            })
            .collect(),
        DataType::Decimal(_, scale) => {
            let scale = *scale as u32;
            let raw = s.to_physical_repr();
            let raw = raw.i128()?;
            raw.iter()
                .map(|v| match v {
                    None => Value::Missing,
                    Some(v) => {
                        let c = if scale <= 2 {
                            v.checked_mul(10i128.pow(2 - scale))
                        } else {
                            let div = 10i128.pow(scale - 2);
                            (v % div == 0).then(|| v / div)
                        };
                        bound(c.and_then(|c| i64::try_from(c).ok()))
                    }
                })
                .collect()
        }
        dt => bail!("{name}: column 'amount' has type {dt}; accepted: decimal, float, integer, string"),
    })
}

/// Exact cents of decimal text: `-12`, `12.5`, `12.50`, `+0.05`; more than two decimals, an
/// exponent or a thousands separator is invalid.
pub fn cents_of_text(t: &str) -> Option<i64> {
    let (neg, t) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || frac.len() > 2 || int.len() > 18 {
        return None;
    }
    let whole: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    let c = whole.checked_mul(100)?.checked_add(frac)?;
    Some(if neg { -c } else { c })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_is_exact_cents() {
        for (t, c) in [("12", Some(1200)), ("12.5", Some(1250)), ("12.05", Some(1205)), ("-3.10", Some(-310))] {
            assert_eq!(cents_of_text(t), c, "{t}");
        }
        for t in ["+0.05", ".5", "7."] {
            assert!(cents_of_text(t).is_some(), "{t}");
        }
        for t in ["12.345", "1e3", "1,000", "abc", "-", ".", "", "1.2.3", "99999999999999999999"] {
            assert_eq!(cents_of_text(t), None, "{t}");
        }
    }

    fn ctx(shops: &HashSet<String>) -> SalesCtx<'_> {
        SalesCtx {
            clock: LocalClock::new(chrono_tz::Asia::Shanghai),
            valid_times: (946_684_800, 4_102_444_799),
            known_shops: shops,
        }
    }

    #[test]
    fn every_rejection_reason_is_counted_once_and_good_rows_kept() {
        let csv = "transaction_id,shop_code,sold_at,amount\n\
                   ,S1,1772445600,1\n\
                   t2,,1772445600,1\n\
                   t3,S9,1772445600,1\n\
                   t4,S1,,1\n\
                   t5,S1,yesterday,1\n\
                   t6,S1,1772445600,\n\
                   t7,S1,1772445600,1.005\n\
                   t8,S1,1772445600,-2.50\n\
                   t9,S2,1772474400.9,19.9\n";
        let shops: HashSet<String> = ["S1".to_string(), "S2".to_string()].into();
        let p = parse(Bytes::from(csv), "x.csv", true, &mut ctx(&shops)).unwrap();
        assert_eq!(p.quality.rejected, [1; 7]);
        assert_eq!((p.quality.rows_read, p.quality.rows_accepted), (9, 2));
        let cents: Vec<i64> = p.rows.column("cents").unwrap().i64().unwrap().into_no_null_iter().collect();
        assert_eq!(cents, [-250, 1990]);
        // 2026-03-02 10:00 UTC is 18:00 in Shanghai; 2026-03-02 18:00:00.9 UTC is 02:00 on the 3rd.
        let days: Vec<i32> = p.rows.column("day").unwrap().i32().unwrap().into_no_null_iter().collect();
        let d = |s: &str| crate::timeutil::date_to_days(chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        assert_eq!(days, [d("2026-03-02"), d("2026-03-03")]);
        let e = parse(Bytes::from("transaction_id,shop_code,amount\n"), "y.csv", true, &mut ctx(&shops)).err().unwrap();
        assert!(format!("{e:#}").contains("y.csv: missing required column 'sold_at'"), "{e:#}");
    }
}
