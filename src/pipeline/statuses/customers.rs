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
                out.combine_last(b.row(j));
                (i, j) = (i + 1, j + 1);
            }
        }
        out
    }

    /// Folds row `r` (the same device, other days) into the last row.
    fn combine_last(&mut self, r: Row) {
        let k = self.mac.len() - 1;
        self.first_seen[k] = self.first_seen[k].min(r.first_seen);
        self.last_seen[k] = self.last_seen[k].max(r.last_seen);
        self.first_date[k] = self.first_date[k].min(r.first_date);
        self.last_date[k] = self.last_date[k].max(r.last_date);
        self.days_seen[k] += r.days_seen;
        self.first_visit[k] = self.first_visit[k].min(r.first_visit);
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

/// One device's values in a customers aggregate.
#[derive(Clone, Copy)]
pub(super) struct Row {
    pub(super) first_seen: i64,
    pub(super) last_seen: i64,
    pub(super) first_date: i32,
    pub(super) last_date: i32,
    pub(super) days_seen: i64,
    pub(super) first_visit: i32,
}

/// A customers aggregate looked up by device: decoded ([`Aggregate`]) or as stored ([`Stored`]).
pub(super) trait Rows {
    /// The row of a device.
    fn find(&self, mac: u64) -> Option<usize>;
    fn row(&self, i: usize) -> Row;
    fn macs(&self) -> Box<dyn Iterator<Item = u64> + '_>;
}

impl Rows for Aggregate {
    fn find(&self, mac: u64) -> Option<usize> {
        self.mac.binary_search(&mac).ok()
    }

    fn row(&self, i: usize) -> Row {
        Row {
            first_seen: self.first_seen[i],
            last_seen: self.last_seen[i],
            first_date: self.first_date[i],
            last_date: self.last_date[i],
            days_seen: self.days_seen[i],
            first_visit: self.first_visit[i],
        }
    }

    fn macs(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        Box::new(self.mac.iter().copied())
    }
}

/// The rows of `latest`'s devices with `settled`'s rows of the same devices merged in:
/// `customers_recent` from the settled part and the newest day, without touching the settled
/// devices not seen since (a binary search per recent device).
pub(super) fn overlay(settled: &dyn Rows, latest: &Aggregate) -> Aggregate {
    let mut out = Aggregate::with_capacity(latest.mac.len());
    for j in 0..latest.mac.len() {
        out.push(latest, j);
        if let Some(i) = settled.find(latest.mac[j]) {
            out.combine_last(settled.row(i));
        }
    }
    out
}

/// The settled aggregate as stored by [`Aggregate::to_bytes`], read in place: an update
/// looks up only the devices it saw (the object is memory-mapped where local), so its cost
/// does not grow with every device ever seen. Decoded whole only when the boundary moves.
pub(super) struct Stored {
    b: bytes::Bytes,
    n: usize,
}

impl Stored {
    /// Checks the header, the size and the device order; anything else (a truncated or
    /// foreign object, devices out of order) is an error, never a panic.
    pub(super) fn parse(b: bytes::Bytes) -> Result<Self> {
        let corrupt = || anyhow::anyhow!("corrupt settled customers in the state; run `footfall run` to rebuild");
        let rest = b.strip_prefix(MAGIC.as_slice()).ok_or_else(corrupt)?;
        let (n, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let n = usize::try_from(u64::from_le_bytes(*n)).map_err(|_| corrupt())?;
        if n.checked_mul(44) != Some(rest.len()) {
            return Err(corrupt());
        }
        let st = Stored { b, n };
        if (1..n).any(|i| st.mac(i - 1) >= st.mac(i)) {
            return Err(corrupt());
        }
        Ok(st)
    }

    /// Column `k` of the 8-byte ones (mac, first_seen, last_seen, days_seen), row `i`.
    fn wide(&self, k: usize, i: usize) -> [u8; 8] {
        let at = 16 + (k * self.n + i) * 8;
        self.b.get(at..at + 8).and_then(|s| s.try_into().ok()).unwrap_or_default()
    }

    /// Column `k` of the 4-byte ones (first_date, last_date, first_visit), row `i`.
    fn narrow(&self, k: usize, i: usize) -> [u8; 4] {
        let at = 16 + self.n * 32 + (k * self.n + i) * 4;
        self.b.get(at..at + 4).and_then(|s| s.try_into().ok()).unwrap_or_default()
    }

    fn mac(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.wide(0, i))
    }

    pub(super) fn decode(&self) -> Aggregate {
        let mut a = Aggregate::with_capacity(self.n);
        for i in 0..self.n {
            let r = self.row(i);
            a.mac.push(self.mac(i));
            a.first_seen.push(r.first_seen);
            a.last_seen.push(r.last_seen);
            a.first_date.push(r.first_date);
            a.last_date.push(r.last_date);
            a.days_seen.push(r.days_seen);
            a.first_visit.push(r.first_visit);
        }
        a
    }
}

impl Rows for Stored {
    fn find(&self, mac: u64) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.mac(mid).cmp(&mac) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    fn row(&self, i: usize) -> Row {
        Row {
            first_seen: i64::from_le_bytes(self.wide(1, i)),
            last_seen: i64::from_le_bytes(self.wide(2, i)),
            days_seen: i64::from_le_bytes(self.wide(3, i)),
            first_date: i32::from_le_bytes(self.narrow(0, i)),
            last_date: i32::from_le_bytes(self.narrow(1, i)),
            first_visit: i32::from_le_bytes(self.narrow(2, i)),
        }
    }

    fn macs(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        Box::new((0..self.n).map(|i| self.mac(i)))
    }
}
