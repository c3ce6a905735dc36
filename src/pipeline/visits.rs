//! Stage 3, a day's rollup → its visits (docs/tables.md, "Definitions"): shop visits (a device's records at
//! one shop, split where consecutive records are more than `visit_gap` apart) and mall visits
//! (all its records, split at `mall_gap`). Computed once per day and shared by every query
//! that needs them; a day's rollup never crosses local midnight, so neither do visits.

use anyhow::{bail, Result};
use polars::prelude::*;

use crate::config::Settings;
pub use crate::rules::qualifying;
use crate::schema::MAC;

/// Shop visits of `pos` in any order (for a single device's story): records of one device at
/// one shop, split where consecutive seconds are more than `gap` apart. Columns: device,
/// shop, start, end, dwell, rssi_max.
pub fn visits(pos: &DataFrame, gap: i64) -> Result<DataFrame> {
    sessions(pos, &[MAC, "shop_code"], gap)
}

/// A day's shop visits and mall visits (docs/tables.md, "Definitions"). Every shop visit carries
/// `mall_visit`: the id of the mall visit holding its first record, and `pair`: the number of
/// its (device, shop) among the day's pairs (0, 1, … in order of first visit), so per-pair
/// totals are an indexed sum instead of a hash aggregation over the day's visits.
pub struct DayVisits {
    /// device, shop_code, start, end, dwell, rssi_max, mall_visit, pair.
    pub shop: DataFrame,
    /// device, start, end, dwell, rssi_max, mall_visit.
    pub mall: DataFrame,
}

/// Shop and mall visits of a day's rollup in one pass over its rows in time order (the order
/// [`super::rollup::rollup`] leaves them in): each device's open mall visit, and each
/// (device, shop)'s open shop visit, is extended by a record at most the gap after its last
/// one, else closed and a new one opened. A shop visit's mall visit is the device's open one
/// when it starts. No sort and no group-by: these used to be a sort and three group-bys.
///
/// A device's visits depend on its own rows only, so the devices are split into one
/// partition per worker and each partition's pass runs on its own thread (at 7 M rows a day
/// the single pass was the largest serial step of the day). Every visit and pair remembers
/// the row that opened it; merging the partitions by that row gives exactly the single
/// pass's order and numbering.
pub fn day_visits(pos: &DataFrame, s: &Settings) -> Result<DayVisits> {
    day_visits_in(pos, s, if pos.height() < SPLIT_ROWS { 1 } else { crate::par::workers(MAX_PARTS) })
}

/// Below this many rows one pass is quicker than starting threads and merging.
const SPLIT_ROWS: usize = 100_000;
/// Partitions at most (the merge picks the next item among them linearly).
const MAX_PARTS: usize = 8;

fn day_visits_in(pos: &DataFrame, s: &Settings, parts: usize) -> Result<DayVisits> {
    let second = pos.column("second")?.i64()?;
    let mac = pos.column(MAC)?.u64()?;
    let shop = pos.column("shop_code")?.str()?;
    let rssi = pos.column("rssi_max")?.i32()?;
    if [second.null_count(), mac.null_count(), shop.null_count(), rssi.null_count()].iter().any(|n| *n > 0) {
        bail!("a day's rollup has null keys");
    }
    if second.into_no_null_iter().zip(second.into_no_null_iter().skip(1)).any(|(a, b)| b < a) {
        bail!("a day's rollup is not in time order");
    }
    // Shops as small integers: the open-visit maps hash and compare integers, not strings.
    let mut dict = super::rollup::Dict::default();
    let shop_id = dict.ids_of(shop);
    let codes: Vec<&str> = dict.names().iter().map(String::as_str).collect();
    let cols = Cols { second, mac, shop_id: &shop_id, rssi };
    let passes: Vec<usize> = (0..parts).collect();
    let done = crate::par::map(&passes, |p| Ok(cols.pass(*p, parts, s)))?;
    merge(done, &codes)
}

/// The rollup's columns a pass reads.
struct Cols<'a> {
    second: &'a Int64Chunked,
    mac: &'a UInt64Chunked,
    /// Per row, the shop's index into the day's distinct codes.
    shop_id: &'a [u32],
    rssi: &'a Int32Chunked,
}

/// One partition's visits, each with the row that opened it; ids are local to the partition.
#[derive(Default)]
struct Pass {
    mall: Spans,
    mall_row: Vec<u32>,
    shops: Spans,
    shop_row: Vec<u32>,
    shop_id: Vec<u32>,
    /// Per shop visit: its mall visit (local index).
    mall_of: Vec<u32>,
    /// Per shop visit: its pair (local index); `pair_row`: the row of each pair's first record.
    pair_of: Vec<u32>,
    pair_row: Vec<u32>,
}

fn partition(mac: u64, parts: usize) -> usize {
    (mac.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % parts
}

impl Cols<'_> {
    fn pass(&self, part: usize, parts: usize, s: &Settings) -> Pass {
        let mut p = Pass::default();
        let mut open_mall: PlHashMap<u64, usize> = PlHashMap::new();
        // (device, shop) → (its open shop visit, its pair number).
        let mut open_shop: PlHashMap<(u64, u32), (usize, u32)> = PlHashMap::new();
        let rows = self.second.into_no_null_iter().zip(self.mac.into_no_null_iter());
        let rows = rows.zip(self.shop_id.iter().copied().zip(self.rssi.into_no_null_iter()));
        for (row, ((t, m), (id, r))) in rows.enumerate() {
            if parts > 1 && partition(m, parts) != part {
                continue;
            }
            let row = row as u32;
            let mv = match open_mall.get(&m) {
                Some(&i) if t - p.mall.end[i] <= s.mall_gap => p.mall.extend(i, t, r),
                _ => {
                    let i = p.mall.open(m, t, r);
                    p.mall_row.push(row);
                    open_mall.insert(m, i);
                    i
                }
            };
            let pairs = open_shop.len() as u32;
            let open = open_shop.entry((m, id)).or_insert_with(|| {
                p.pair_row.push(row);
                (usize::MAX, pairs)
            });
            match open.0 {
                i if i != usize::MAX && t - p.shops.end[i] <= s.visit_gap => {
                    p.shops.extend(i, t, r);
                }
                _ => {
                    open.0 = p.shops.open(m, t, r);
                    p.shop_row.push(row);
                    p.shop_id.push(id);
                    p.mall_of.push(mv as u32);
                    p.pair_of.push(open.1);
                }
            }
        }
        p
    }
}

/// The order of the items of every partition by the row that opened them (rows are
/// distinct across partitions): (partition, local index) in global order, and each
/// partition's local → global index.
fn by_row(rows: &[&[u32]]) -> (Vec<(usize, usize)>, Vec<Vec<u32>>) {
    let total = rows.iter().map(|r| r.len()).sum();
    let mut order = Vec::with_capacity(total);
    let mut global: Vec<Vec<u32>> = rows.iter().map(|r| Vec::with_capacity(r.len())).collect();
    let mut at = vec![0usize; rows.len()];
    for g in 0..total {
        let p = (0..rows.len())
            .filter(|p| at[*p] < rows[*p].len())
            .min_by_key(|p| rows[*p][at[*p]])
            .expect("an item is left");
        order.push((p, at[p]));
        global[p].push(g as u32);
        at[p] += 1;
    }
    (order, global)
}

fn merge(passes: Vec<Pass>, codes: &[&str]) -> Result<DayVisits> {
    let rows = |f: fn(&Pass) -> &[u32]| -> Vec<&[u32]> { passes.iter().map(f).collect() };
    let (mall_order, mall_global) = by_row(&rows(|p| &p.mall_row));
    let (shop_order, _) = by_row(&rows(|p| &p.shop_row));
    let (_, pair_global) = by_row(&rows(|p| &p.pair_row));
    let mut mall = Spans::default();
    for &(p, i) in &mall_order {
        mall.push(&passes[p].mall, i);
    }
    let mut shops = Spans::default();
    let (mut shop_of, mut mall_of, mut pair_of) = (Vec::new(), Vec::new(), Vec::new());
    for &(p, i) in &shop_order {
        let pass = &passes[p];
        shops.push(&pass.shops, i);
        shop_of.push(codes[pass.shop_id[i] as usize]);
        mall_of.push(mall_global[p][pass.mall_of[i] as usize] + 1);
        pair_of.push(pair_global[p][pass.pair_of[i] as usize]);
    }
    let n_mall = mall.mac.len() as u32;
    let mut shop = shops.frame()?;
    shop.insert_column(1, StringChunked::from_iter_values("shop_code".into(), shop_of.into_iter()).into_column())?;
    shop.with_column(Column::new("mall_visit".into(), mall_of))?;
    shop.with_column(Column::new("pair".into(), pair_of))?;
    let mut mall = mall.frame()?;
    mall.with_column(Column::new("mall_visit".into(), (1..=n_mall).collect::<Vec<u32>>()))?;
    Ok(DayVisits { shop, mall })
}

/// Visits being built: device, first and last second, strongest RSSI.
#[derive(Default)]
struct Spans {
    mac: Vec<u64>,
    start: Vec<i64>,
    end: Vec<i64>,
    rssi_max: Vec<i32>,
}

impl Spans {
    fn open(&mut self, mac: u64, t: i64, rssi: i32) -> usize {
        self.mac.push(mac);
        self.start.push(t);
        self.end.push(t);
        self.rssi_max.push(rssi);
        self.mac.len() - 1
    }

    fn push(&mut self, from: &Spans, i: usize) {
        self.mac.push(from.mac[i]);
        self.start.push(from.start[i]);
        self.end.push(from.end[i]);
        self.rssi_max.push(from.rssi_max[i]);
    }

    fn extend(&mut self, i: usize, t: i64, rssi: i32) -> usize {
        self.end[i] = t;
        self.rssi_max[i] = self.rssi_max[i].max(rssi);
        i
    }

    /// device, start, end, dwell, rssi_max.
    fn frame(self) -> Result<DataFrame> {
        let dwell: Vec<i64> = self.start.iter().zip(&self.end).map(|(s, e)| e - s).collect();
        Ok(DataFrame::new(
            self.mac.len(),
            vec![
                Column::new(MAC.into(), self.mac),
                Column::new("start".into(), self.start),
                Column::new("end".into(), self.end),
                Column::new("dwell".into(), dwell),
                Column::new("rssi_max".into(), self.rssi_max),
            ],
        )?)
    }
}

/// Gap-split sessions of `pos` per `keys` (a day's rollup never crosses local midnight).
fn sessions(pos: &DataFrame, keys: &[&str], gap: i64) -> Result<DataFrame> {
    let prev = |c: &str| col(c).shift(lit(1));
    let mut new = (col("second") - prev("second")).gt(lit(gap));
    for k in keys {
        new = col(*k).neq(prev(k)).or(new);
    }
    let mut by: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    by.push(col("second"));
    let mut order: Vec<&str> = keys.to_vec();
    order.push("second");
    let mut aggs: Vec<Expr> = keys.iter().map(|k| col(*k).first()).collect();
    aggs.extend([col("second").min().alias("start"), col("second").max().alias("end"), col("rssi_max").max()]);
    Ok(pos
        .clone()
        .lazy()
        .group_by(by)
        .agg([col("rssi_max").max()])
        .sort(order, SortMultipleOptions::default())
        .with_column(new.fill_null(lit(true)).cast(DataType::UInt32).cum_sum(false).alias("visit"))
        .group_by([col("visit")])
        .agg(aggs)
        .with_column((col("end") - col("start")).alias("dwell"))
        .drop(cols(["visit"]))
        .collect()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The scan against the gap-split definition formulated with Polars: shop visits split per
    /// (device, shop), mall visits per device, each shop visit's mall visit the one holding its
    /// start — with the shop gap below and above the mall gap.
    #[test]
    fn visit_scan_equals_gap_split_sessions() {
        for (visit_gap, mall_gap) in [(600, 900), (900, 300)] {
            let s = Settings { visit_gap, mall_gap, ..Settings::default() };
            for seed in 0..20 {
                let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
                let n = 300;
                let second: Vec<i64> = (0..n).map(|_| rng.gen_range(0..86_000)).collect();
                let mac: Vec<u64> = (0..n).map(|_| rng.gen_range(1..5)).collect();
                let shop: Vec<&str> = (0..n).map(|_| ["S1", "S2", "S3"][rng.gen_range(0..3)]).collect();
                let ap: Vec<u64> = (0..n).map(|_| rng.gen_range(1..3)).collect();
                let rssi: Vec<i32> = (0..n).map(|_| rng.gen_range(-90..-30)).collect();
                let rows = df!("second" => second, MAC => mac, "ap_mac" => ap, "shop_code" => shop,
                    "hour" => vec![0i64; n], "rssi_min" => rssi.clone(), "rssi_max" => rssi)
                .unwrap();
                let pos = crate::pipeline::rollup::rollup(vec![rows]).unwrap();
                let got = day_visits(&pos, &s).unwrap();
                // Split by device over several passes: the single pass's rows, order and ids.
                for parts in [2, 3, 8] {
                    let split = day_visits_in(&pos, &s, parts).unwrap();
                    assert_eq!(split.shop, got.shop, "seed {seed}, {parts} partitions");
                    assert_eq!(split.mall, got.mall, "seed {seed}, {parts} partitions");
                }
                let want_shop = sessions(&pos, &[MAC, "shop_code"], visit_gap).unwrap();
                let want_mall = sessions(&pos, &[MAC], mall_gap).unwrap();
                assert!(want_mall.height() > 10, "seed {seed}: {} mall visits", want_mall.height());
                let sorted = |df: DataFrame, by: &[&str]| df.sort(by.to_vec(), Default::default()).unwrap();
                let cols = [MAC, "start", "end", "dwell", "rssi_max"];
                assert_eq!(
                    sorted(got.mall.select(cols).unwrap(), &[MAC, "start"]),
                    sorted(want_mall.select(cols).unwrap(), &[MAC, "start"]),
                    "seed {seed}"
                );
                // Each shop visit's mall visit, by its start: the one whose span holds it.
                let mall_start = |df: &DataFrame, i: usize| -> i64 {
                    let m = df.column("mall_visit").unwrap().u32().unwrap().get(i).unwrap();
                    let row = got.mall.column("mall_visit").unwrap().u32().unwrap().iter().position(|v| v == Some(m));
                    got.mall.column("start").unwrap().i64().unwrap().get(row.unwrap()).unwrap()
                };
                let held: Vec<i64> = (0..got.shop.height()).map(|i| mall_start(&got.shop, i)).collect();
                for (i, held) in held.iter().enumerate() {
                    let (d, t) = (
                        got.shop.column(MAC).unwrap().u64().unwrap().get(i).unwrap(),
                        got.shop.column("start").unwrap().i64().unwrap().get(i).unwrap(),
                    );
                    let holder = want_mall
                        .clone()
                        .lazy()
                        .filter(col(MAC).eq(lit(d)).and(col("start").lt_eq(lit(t))).and(col("end").gt_eq(lit(t))))
                        .collect()
                        .unwrap();
                    assert_eq!(holder.height(), 1, "seed {seed}");
                    assert_eq!(holder.column("start").unwrap().i64().unwrap().get(0), Some(*held), "seed {seed}");
                }
                let cols = [MAC, "shop_code", "start", "end", "dwell", "rssi_max"];
                assert_eq!(
                    sorted(got.shop.select(cols).unwrap(), &[MAC, "shop_code", "start"]),
                    sorted(want_shop.select(cols).unwrap(), &[MAC, "shop_code", "start"]),
                    "seed {seed}"
                );
                // One pair number per (device, shop), numbered 0.. in order of first visit.
                let pairs = got
                    .shop
                    .clone()
                    .lazy()
                    .group_by([col(MAC), col("shop_code")])
                    .agg([col("pair").n_unique().alias("numbers"), col("pair").first(), col("start").min()])
                    .sort(["pair"], Default::default())
                    .collect()
                    .unwrap();
                assert!(pairs.column("numbers").unwrap().u32().unwrap().into_no_null_iter().all(|n| n == 1));
                let numbers: Vec<u32> = pairs.column("pair").unwrap().u32().unwrap().into_no_null_iter().collect();
                assert_eq!(numbers, (0..pairs.height() as u32).collect::<Vec<_>>(), "seed {seed}");
                let firsts: Vec<i64> = pairs.column("start").unwrap().i64().unwrap().into_no_null_iter().collect();
                assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "seed {seed}: numbered out of first-visit order");
            }
        }
    }
}
