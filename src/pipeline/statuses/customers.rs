//! The `customers` snapshot from statuses, and its aggregate as plain sorted vectors so that
//! the settled part and the latest days merge in one pass.

use anyhow::Result;
use polars::prelude::*;

use super::strictly_increasing;
use crate::config::Settings;
use crate::schema::MAC;

/// The `customers` snapshot from device-day statuses, sorted by device; with
/// `staff.policy = "exclude"` the days a device was staff do not count. Also each device's
/// first visitor-day (`first_visit`, kept in the state only).
pub fn customers(statuses: &DataFrame, s: &Settings) -> Result<DataFrame> {
    let mut lf = statuses.clone().lazy();
    if s.staff_exclude {
        lf = lf.filter(col("staff").not());
    }
    Ok(lf
        .group_by([col(MAC)])
        .agg([
            col("first_seen").min(),
            col("last_seen").max(),
            col("day").min().alias("first_date"),
            col("day").max().alias("last_date"),
            col("day").n_unique().cast(DataType::Int64).alias("days_seen"),
            col("day").filter(col("visitor")).min().alias("first_visit"),
        ])
        .sort([MAC], SortMultipleOptions::default())
        .collect()?)
}

/// Customers aggregates of two disjoint sets of days (each sorted by device), combined in
/// one merge pass; the result is sorted by device, the published order. A group-by over
/// both would hash every device ever seen and leave them to be sorted again, each update.
pub fn merge_customers(a: &DataFrame, b: &DataFrame) -> Result<DataFrame> {
    Aggregate::of(a)?.merge(&Aggregate::of(b)?).frame()
}

/// The columns of a customers aggregate, in device order, as plain vectors (the merge
/// touches every device ever seen each update: no per-value `Option`s or iterators).
pub(super) struct Aggregate {
    pub(super) mac: Vec<u64>,
    pub(super) first_seen: Vec<i64>,
    pub(super) last_seen: Vec<i64>,
    pub(super) first_date: Vec<i32>,
    pub(super) last_date: Vec<i32>,
    pub(super) days_seen: Vec<i64>,
    /// `NO_VISIT` for a device without a visitor-day.
    pub(super) first_visit: Vec<i32>,
}

pub(super) const NO_VISIT: i32 = i32::MAX;

/// Header of [`Aggregate::to_bytes`] (format version in the last byte).
const MAGIC: &[u8; 8] = b"FFCUST01";

impl Aggregate {
    pub(super) fn with_capacity(n: usize) -> Self {
        Aggregate {
            mac: Vec::with_capacity(n),
            first_seen: Vec::with_capacity(n),
            last_seen: Vec::with_capacity(n),
            first_date: Vec::with_capacity(n),
            last_date: Vec::with_capacity(n),
            days_seen: Vec::with_capacity(n),
            first_visit: Vec::with_capacity(n),
        }
    }

    /// The aggregate's columns, sorted by device if they are not (a state written before
    /// the settled part was kept sorted holds it in hash order).
    pub(super) fn of(df: &DataFrame) -> Result<Self> {
        let df = if strictly_increasing(df.column(MAC)?.u64()?) {
            df.clone()
        } else {
            df.sort([MAC], SortMultipleOptions::default())?
        };
        fn values<T: PolarsNumericType>(ca: &ChunkedArray<T>) -> Result<Vec<T::Native>> {
            anyhow::ensure!(ca.null_count() == 0, "customers aggregate: nulls in '{}'", ca.name());
            let ca = ca.rechunk();
            Ok(ca.cont_slice().map(<[_]>::to_vec).unwrap_or_else(|_| ca.into_no_null_iter().collect()))
        }
        let fv = df.column("first_visit")?.i32()?;
        Ok(Aggregate {
            mac: values(df.column(MAC)?.u64()?)?,
            first_seen: values(df.column("first_seen")?.i64()?)?,
            last_seen: values(df.column("last_seen")?.i64()?)?,
            first_date: values(df.column("first_date")?.i32()?)?,
            last_date: values(df.column("last_date")?.i32()?)?,
            days_seen: values(df.column("days_seen")?.i64()?)?,
            first_visit: if fv.null_count() == 0 {
                values(fv)?
            } else {
                fv.iter().map(|v| v.unwrap_or(NO_VISIT)).collect()
            },
        })
    }

    pub(super) fn merge(&self, b: &Aggregate) -> Aggregate {
        let (a, na, nb) = (self, self.mac.len(), b.mac.len());
        let mut out = Aggregate::with_capacity(na + nb);
        let (mut i, mut j) = (0, 0);
        while i < na || j < nb {
            if j == nb || (i < na && a.mac[i] < b.mac[j]) {
                out.push(a, i);
                i += 1;
            } else if i == na || b.mac[j] < a.mac[i] {
                out.push(b, j);
                j += 1;
            } else {
                out.push(a, i);
                out.combine_last(b, j);
                (i, j) = (i + 1, j + 1);
            }
        }
        out
    }

    /// The rows of `latest`'s devices with this aggregate's rows of the same devices merged
    /// in: `customers_recent` from the settled part and the newest day, without touching the
    /// settled devices not seen since (a binary search per recent device).
    pub(super) fn overlay(&self, latest: &Aggregate) -> Aggregate {
        let mut out = Aggregate::with_capacity(latest.mac.len());
        for j in 0..latest.mac.len() {
            out.push(latest, j);
            if let Some(i) = self.find(latest.mac[j]) {
                out.combine_last(self, i);
            }
        }
        out
    }

    /// Folds `from`'s row `i` (the same device, other days) into the last row.
    fn combine_last(&mut self, from: &Aggregate, i: usize) {
        let k = self.mac.len() - 1;
        self.first_seen[k] = self.first_seen[k].min(from.first_seen[i]);
        self.last_seen[k] = self.last_seen[k].max(from.last_seen[i]);
        self.first_date[k] = self.first_date[k].min(from.first_date[i]);
        self.last_date[k] = self.last_date[k].max(from.last_date[i]);
        self.days_seen[k] += from.days_seen[i];
        self.first_visit[k] = self.first_visit[k].min(from.first_visit[i]);
    }

    /// The aggregate as raw little-endian columns behind a header (magic, row count): read
    /// by every update, so it must load at memory speed, not decode.
    pub(super) fn to_bytes(&self) -> bytes::Bytes {
        let n = self.mac.len();
        let mut b = Vec::with_capacity(16 + n * 44);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&(n as u64).to_le_bytes());
        b.extend(self.mac.iter().flat_map(|v| v.to_le_bytes()));
        b.extend(self.first_seen.iter().flat_map(|v| v.to_le_bytes()));
        b.extend(self.last_seen.iter().flat_map(|v| v.to_le_bytes()));
        b.extend(self.days_seen.iter().flat_map(|v| v.to_le_bytes()));
        b.extend(self.first_date.iter().flat_map(|v| v.to_le_bytes()));
        b.extend(self.last_date.iter().flat_map(|v| v.to_le_bytes()));
        b.extend(self.first_visit.iter().flat_map(|v| v.to_le_bytes()));
        b.into()
    }

    /// Reads [`Aggregate::to_bytes`]; anything else (a truncated or foreign object, devices out
    /// of order) is an error, never a panic.
    pub(super) fn from_bytes(b: &[u8]) -> Result<Self> {
        let corrupt = || anyhow::anyhow!("corrupt settled customers in the state; run `footfall run` to rebuild");
        let rest = b.strip_prefix(MAGIC).ok_or_else(corrupt)?;
        let (n, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let n = usize::try_from(u64::from_le_bytes(*n)).map_err(|_| corrupt())?;
        if n.checked_mul(44) != Some(rest.len()) {
            return Err(corrupt());
        }
        let (wide, narrow) = rest.split_at(n * 32);
        let w = |k: usize| {
            wide[k * n * 8..(k + 1) * n * 8].chunks_exact(8).map(|c| <[u8; 8]>::try_from(c).unwrap_or_default())
        };
        let s = |k: usize| {
            narrow[k * n * 4..(k + 1) * n * 4].chunks_exact(4).map(|c| <[u8; 4]>::try_from(c).unwrap_or_default())
        };
        let a = Aggregate {
            mac: w(0).map(u64::from_le_bytes).collect(),
            first_seen: w(1).map(i64::from_le_bytes).collect(),
            last_seen: w(2).map(i64::from_le_bytes).collect(),
            days_seen: w(3).map(i64::from_le_bytes).collect(),
            first_date: s(0).map(i32::from_le_bytes).collect(),
            last_date: s(1).map(i32::from_le_bytes).collect(),
            first_visit: s(2).map(i32::from_le_bytes).collect(),
        };
        if a.mac.windows(2).any(|p| p[0] >= p[1]) {
            return Err(corrupt());
        }
        Ok(a)
    }

    /// A device's row.
    pub(super) fn find(&self, mac: u64) -> Option<usize> {
        self.mac.binary_search(&mac).ok()
    }

    pub(super) fn push(&mut self, from: &Aggregate, i: usize) {
        self.mac.push(from.mac[i]);
        self.first_seen.push(from.first_seen[i]);
        self.last_seen.push(from.last_seen[i]);
        self.first_date.push(from.first_date[i]);
        self.last_date.push(from.last_date[i]);
        self.days_seen.push(from.days_seen[i]);
        self.first_visit.push(from.first_visit[i]);
    }

    pub(super) fn frame(self) -> Result<DataFrame> {
        let n = self.mac.len();
        let first_visit = Int32Chunked::from_iter_options(
            "first_visit".into(),
            self.first_visit.iter().map(|d| (*d != NO_VISIT).then_some(*d)),
        );
        Ok(DataFrame::new(
            n,
            vec![
                UInt64Chunked::from_vec(MAC.into(), self.mac).into_column(),
                Int64Chunked::from_vec("first_seen".into(), self.first_seen).into_column(),
                Int64Chunked::from_vec("last_seen".into(), self.last_seen).into_column(),
                Int32Chunked::from_vec("first_date".into(), self.first_date).into_column(),
                Int32Chunked::from_vec("last_date".into(), self.last_date).into_column(),
                Int64Chunked::from_vec("days_seen".into(), self.days_seen).into_column(),
                first_visit.into_column(),
            ],
        )?)
    }
}
