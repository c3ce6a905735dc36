//! Stage 2, events → rollups. Each probe file's events become one *segment* per local day at
//! the grain of a day's rollup `pos`: one row per (second, device, AP, shop) with RSSI min/max
//! and the local hour start. Merging segments is associative and duplicate-insensitive, so a
//! day's rollup is the same whatever files arrived together — which makes `update` exact — and
//! a changed file retracts exactly its own segments.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use polars::prelude::*;

use super::ingest::{self, IngestCtx, ProbeFile};
use super::plan::Report;
use crate::config::Plan;
use crate::dims::Dims;
use crate::fault;
use crate::progress::Progress;
use crate::schema::MAC;
use crate::state::{day_str, FileRecord, Manifest, State};

/// A file's events reduced to the segment grain (the same as `pos`), sorted like `pos`: one
/// segment per local day they fall on.
pub fn events_to_segments(events: &ingest::Events) -> Result<Vec<(i32, DataFrame)>> {
    events
        .days()
        .into_iter()
        .map(|(day, rows)| {
            let mut g = Gathered::default();
            g.add_events(events, rows.as_deref());
            Ok((day, g.finish()?))
        })
        .collect()
}

/// Folds rollup rows (per-file segments of one day, or one file's events) into one rollup:
/// one row per (second, device, AP, shop) with the RSSI min and max, **sorted by those four
/// keys** — the order of `customer_positions`' key, and time order for the visit scan.
///
/// Why by hand rather than a Polars group-by: the four-key group-by hashed a string per row
/// and left the rows unordered, so every later stage sorted or grouped again. Here the shop
/// becomes its rank in a per-call dictionary of the distinct strings (a few hundred), so the
/// sort compares integers only (APs are `u64` MACs already); segments are written in this
/// order, so a day's merge sorts a few long sorted runs.
pub fn rollup(parts: Vec<DataFrame>) -> Result<DataFrame> {
    let (mut rows, k) = (Gathered::default(), parts.len());
    for df in parts {
        rows.add(&df, k)?;
    }
    rows.finish()
}

type Key = (i64, u64, u64, u32, u32);

/// Rollup rows taken from parts, before the sort: (second, device, AP, shop id, row) keys and
/// the row's hour and RSSI range. Parts may come in any order (the sort fixes it), so a day's
/// segments are added as each is read and then dropped: at most one decoded segment per reader
/// thread is alive beside these, never the whole day twice.
#[derive(Default)]
struct Gathered {
    shops: Dict,
    keys: Vec<Key>,
    /// The rows of each part added, in `keys`.
    runs: Vec<std::ops::Range<usize>>,
    hour: Vec<i64>,
    lo: Vec<i32>,
    hi: Vec<i32>,
}

impl Gathered {
    fn with_capacity(n: usize) -> Gathered {
        Gathered {
            keys: Vec::with_capacity(n),
            hour: Vec::with_capacity(n),
            lo: Vec::with_capacity(n),
            hi: Vec::with_capacity(n),
            ..Default::default()
        }
    }

    /// Adds a part's rows; `parts` (how many parts of about this size are coming) sizes the
    /// buffers once instead of letting them double.
    fn add(&mut self, df: &DataFrame, parts: usize) -> Result<()> {
        for c in ["second", MAC, "ap_mac", "shop_code", "hour", "rssi_min", "rssi_max"] {
            if df.column(c)?.null_count() > 0 {
                bail!("rollup rows with a null '{c}'");
            }
        }
        if self.keys.capacity() == 0 {
            let n = df.height() * parts + parts;
            self.keys.reserve(n);
            self.hour.reserve(n);
            self.lo.reserve(n);
            self.hi.reserve(n);
        }
        let second = df.column("second")?.i64()?;
        let mac = df.column(MAC)?.u64()?;
        let (ap, shop) = (df.column("ap_mac")?.u64()?, df.column("shop_code")?.str()?);
        self.hour.extend(df.column("hour")?.i64()?.into_no_null_iter());
        self.lo.extend(df.column("rssi_min")?.i32()?.into_no_null_iter());
        self.hi.extend(df.column("rssi_max")?.i32()?.into_no_null_iter());
        let shop_ids = self.shops.ids_of(shop);
        self.runs.push(self.keys.len()..self.keys.len() + df.height());
        let rest = ap.into_no_null_iter().zip(shop_ids);
        for ((t, m), (a, s)) in second.into_no_null_iter().zip(mac.into_no_null_iter()).zip(rest) {
            let row = self.keys.len() as u32;
            self.keys.push((t, m, a, s, row));
        }
        Ok(())
    }

    /// Adds parsed events (`rows` of them, or all) as rollup rows of themselves: the keys come
    /// straight from the parsed columns, shops mapped from the file's ids to this rollup's.
    fn add_events(&mut self, ev: &ingest::Events, rows: Option<&[u32]>) {
        let shop_id: Vec<u32> = ev.shop_names.iter().map(|s| self.shops.id(s)).collect();
        let n = rows.map_or(ev.len(), <[u32]>::len);
        self.keys.reserve(n);
        self.hour.reserve(n);
        self.lo.reserve(n);
        self.hi.reserve(n);
        let start = self.keys.len();
        let key = |i: usize, row: usize| (ev.second[i], ev.mac[i], ev.ap[i], shop_id[ev.shop[i] as usize], row as u32);
        match rows {
            None => {
                self.keys.extend((0..ev.len()).map(|i| key(i, start + i)));
                self.hour.extend_from_slice(&ev.hour);
                self.lo.extend_from_slice(&ev.rssi);
                self.hi.extend_from_slice(&ev.rssi);
            }
            Some(rows) => {
                self.keys.extend(rows.iter().enumerate().map(|(k, &i)| key(i as usize, start + k)));
                self.hour.extend(rows.iter().map(|&i| ev.hour[i as usize]));
                self.lo.extend(rows.iter().map(|&i| ev.rssi[i as usize]));
                self.hi.extend(rows.iter().map(|&i| ev.rssi[i as usize]));
            }
        }
        self.runs.push(start..self.keys.len());
    }

    fn finish(self) -> Result<DataFrame> {
        let Gathered { shops, mut keys, runs, hour, lo, hi } = self;
        let n = keys.len();
        // Dictionary ids → ranks of the strings, so integer order is string order.
        let (shop_rank, shop_names) = shops.ranks();
        for k in &mut keys {
            k.3 = shop_rank[k.3 as usize];
        }
        let order = order_keys(&mut keys, &runs);
        let out = merge(&keys, &order, (&hour, &lo, &hi), crate::par::workers(n.div_ceil(1 << 20)))?;
        // The inputs (48 bytes a row) go before the shop column's views are made (16 bytes a
        // row): a 7 M-row day's peak is the merge's, not the merge's plus those views.
        drop((keys, order, hour, lo, hi));
        let h = out.second.len();
        let names =
            |v: Vec<String>, name: &str| StringChunked::from_iter_values(name.into(), v.iter().map(String::as_str));
        Ok(DataFrame::new(
            h,
            vec![
                Column::new("second".into(), out.second),
                Column::new(MAC.into(), out.mac),
                Column::new("ap_mac".into(), out.ap),
                names(shop_names, "shop_code").take(out.shop.as_slice())?.into_column(),
                Column::new("hour".into(), out.hour),
                Column::new("rssi_min".into(), out.rssi_min),
                Column::new("rssi_max".into(), out.rssi_max),
            ],
        )?)
    }
}

/// Keys in order → rollup rows: equal keys merge into one row (RSSI min of mins, max of
/// maxes; the first row's hour, the same for equal seconds). The keys are cut by value into
/// `parts` (equal keys never apart); each part's rows are counted, then written in place into
/// its part of the output columns on its own thread (a 7 M-row day's merge is not one core's
/// work). One part (a probe file's segment) is appended on the calling thread, uncounted.
fn merge(keys: &[Key], order: &Order, cols: Cols, parts: usize) -> Result<Sorted> {
    let main_len: usize = order.main.iter().map(|r| r.len()).sum();
    if parts <= 1 || main_len == 0 {
        let mut out = Sorted::with_capacity(keys.len());
        fill(order.rows(keys, None, None), cols, &mut out);
        return Ok(out);
    }
    // Cut keys at even positions of the main ranges.
    let key_at = |mut p: usize| {
        for r in &order.main {
            if p < r.len() {
                return Some(keys[r.start + p]);
            }
            p -= r.len();
        }
        None
    };
    let cuts: Vec<Option<Key>> =
        (0..=parts).map(|j| if j == 0 || j == parts { None } else { key_at(main_len * j / parts) }).collect();
    let bounds: Vec<(Option<&Key>, Option<&Key>)> = cuts.windows(2).map(|w| (w[0].as_ref(), w[1].as_ref())).collect();
    let sizes = crate::par::map(&bounds, |&(from, to)| Ok(distinct_keys(order.rows(keys, from, to))))?;
    let mut out = Sorted::zeroed(sizes.iter().sum());
    let slices = out.split(&sizes);
    crate::par::map_owned(bounds.into_iter().zip(slices).collect(), |((from, to), o)| {
        fill(order.rows(keys, from, to), cols, &mut (usize::MAX, o));
        Ok(())
    })?;
    Ok(out)
}

/// Each key's row's hour and RSSI range.
type Cols<'a> = (&'a [i64], &'a [i32], &'a [i32]);

/// Whether `k`, next in key order after `prev` (updated to `k`), starts an output row.
fn starts_row<'a>(prev: &mut Option<&'a Key>, k: &'a Key) -> bool {
    !std::mem::replace(prev, Some(k)).is_some_and(|p| by_key(p, k).is_eq())
}

/// How many distinct keys `rows` (in key order) holds: the output rows [`fill`] writes.
fn distinct_keys<'a>(rows: impl Iterator<Item = &'a Key>) -> usize {
    let mut prev = None;
    rows.filter(|k| starts_row(&mut prev, k)).count()
}

/// Each key of `rows` (in key order) starts an output row or widens the last one's RSSI range.
fn fill<'a>(rows: impl Iterator<Item = &'a Key>, (hour, lo, hi): Cols, o: &mut impl MergeOut) {
    let mut prev = None;
    for k in rows {
        let r = k.4 as usize;
        match starts_row(&mut prev, k) {
            true => o.start(k, hour[r], lo[r], hi[r]),
            false => o.widen(lo[r], hi[r]),
        }
    }
}

/// Where [`merge`] writes its rows.
trait MergeOut {
    /// A new row from key `k`.
    fn start(&mut self, k: &Key, hour: i64, lo: i32, hi: i32);
    /// Widens the last row's RSSI range.
    fn widen(&mut self, lo: i32, hi: i32);
}

impl MergeOut for Sorted {
    fn start(&mut self, k: &Key, hour: i64, lo: i32, hi: i32) {
        self.second.push(k.0);
        self.mac.push(k.1);
        self.ap.push(k.2);
        self.shop.push(k.3 as IdxSize);
        self.hour.push(hour);
        self.rssi_min.push(lo);
        self.rssi_max.push(hi);
    }

    fn widen(&mut self, lo: i32, hi: i32) {
        if let (Some(a), Some(b)) = (self.rssi_min.last_mut(), self.rssi_max.last_mut()) {
            (*a, *b) = ((*a).min(lo), (*b).max(hi));
        }
    }
}

/// Writes in place: `at` is the last row written (`usize::MAX` before the first).
impl MergeOut for (usize, SortedPart<'_>) {
    fn start(&mut self, k: &Key, hour: i64, lo: i32, hi: i32) {
        let (at, o) = (self.0.wrapping_add(1), &mut self.1);
        (o.second[at], o.mac[at], o.ap[at], o.shop[at]) = (k.0, k.1, k.2, k.3 as IdxSize);
        (o.hour[at], o.rssi_min[at], o.rssi_max[at]) = (hour, lo, hi);
        self.0 = at;
    }

    fn widen(&mut self, lo: i32, hi: i32) {
        let (at, o) = (self.0, &mut self.1);
        o.rssi_min[at] = o.rssi_min[at].min(lo);
        o.rssi_max[at] = o.rssi_max[at].max(hi);
    }
}

fn by_key(a: &Key, b: &Key) -> std::cmp::Ordering {
    (a.0, a.1, a.2, a.3).cmp(&(b.0, b.1, b.2, b.3))
}

/// The key order of a day's keys, mostly without moving them: ranges of `keys` that follow
/// one another in key order (`main`), and the rows to merge in between (`late`, sorted).
struct Order {
    main: Vec<std::ops::Range<usize>>,
    late: Vec<Key>,
}

impl Order {
    /// The keys in order, from `from` (inclusive) to `to` (exclusive); `None`: unbounded.
    fn rows<'a>(
        &'a self,
        keys: &'a [Key],
        from: Option<&'a Key>,
        to: Option<&'a Key>,
    ) -> impl Iterator<Item = &'a Key> {
        let clip = move |s: &'a [Key]| -> &'a [Key] {
            let a = from.map_or(0, |f| s.partition_point(|k| by_key(k, f).is_lt()));
            let b = to.map_or(s.len(), |t| s.partition_point(|k| by_key(k, t).is_lt()));
            &s[a..b.max(a)]
        };
        let main = self.main.iter().flat_map(move |r| clip(&keys[r.clone()]).iter()).peekable();
        let late = clip(&self.late).iter().peekable();
        Merged { main, late }
    }
}

/// Two sequences in key order, merged (ties: `main` first).
struct Merged<A: Iterator, B: Iterator> {
    main: std::iter::Peekable<A>,
    late: std::iter::Peekable<B>,
}

impl<'a, A: Iterator<Item = &'a Key>, B: Iterator<Item = &'a Key>> Iterator for Merged<A, B> {
    type Item = &'a Key;

    fn next(&mut self) -> Option<&'a Key> {
        match (self.main.peek(), self.late.peek()) {
            (Some(m), Some(l)) if by_key(l, m).is_lt() => self.late.next(),
            (Some(_), _) => self.main.next(),
            (None, _) => self.late.next(),
        }
    }
}

/// The order of `keys`, cheaply when it is nearly there. A day's segments (`runs`, each
/// sorted) are taken in order of their last keys; the rows of each below the ones before it
/// (late rows: a prefix, the segment being sorted) are set aside and sorted, the rest
/// follow one another. No key moves unless more than a quarter of them are late: sorting
/// the whole day (the generator's weeks have late rows in every hour) took a copy of it and
/// most of the merge's time. A probe file's events come in time order, so only the rows of
/// each second are sorted. Anything else is sorted in parallel.
fn order_keys(keys: &mut [Key], runs: &[std::ops::Range<usize>]) -> Order {
    let n = keys.len();
    let in_order = |s: &[Key]| s.windows(2).all(|w| by_key(&w[0], &w[1]).is_le());
    let mut order: Vec<&std::ops::Range<usize>> = runs.iter().filter(|r| !r.is_empty()).collect();
    if order.len() > 1 && order.iter().all(|r| in_order(&keys[(*r).clone()])) {
        order.sort_by(|a, b| by_key(&keys[a.end - 1], &keys[b.end - 1]));
        let (mut main, mut late) = (Vec::with_capacity(order.len()), Vec::new());
        let mut max: Option<Key> = None;
        for r in order {
            let run = &keys[r.clone()];
            let cut = max.map_or(0, |m| run.partition_point(|k| by_key(k, &m).is_lt()));
            late.extend_from_slice(&run[..cut]);
            main.push(r.start + cut..r.end);
            max = Some(run[run.len() - 1]);
        }
        if late.len() <= n / 4 {
            crate::par::sort_by(&mut late, by_key);
            return Order { main, late };
        }
    }
    if keys.windows(2).all(|w| w[0].0 <= w[1].0) {
        // Rows with equal keys but their row are merged after, in any order.
        // Within a second only (device, AP, shop) can differ.
        for second in keys.chunk_by_mut(|a, b| a.0 == b.0) {
            second.sort_unstable_by(|a, b| (a.1, a.2, a.3).cmp(&(b.1, b.2, b.3)));
        }
    } else {
        crate::par::sort_by(keys, by_key);
    }
    Order { main: vec![0..n], late: Vec::new() }
}

/// Distinct strings of one column, numbered in order of first appearance.
#[derive(Default)]
pub(crate) struct Dict {
    ids: PlHashMap<String, u32>,
    names: Vec<String>,
}

impl Dict {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        self.names.push(s.to_owned());
        let id = (self.names.len() - 1) as u32;
        self.ids.insert(s.to_owned(), id);
        id
    }

    /// The id of every row of a column, looked up once per distinct value
    /// ([`ingest::per_distinct`]); callers reject columns with nulls first.
    pub(crate) fn ids_of(&mut self, ca: &StringChunked) -> Vec<u32> {
        ingest::per_distinct(ca, |v| self.id(v.unwrap_or_default()))
    }

    /// The strings, by id.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// (rank of each id in string order, the strings in that order).
    fn ranks(self) -> (Vec<u32>, Vec<String>) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let mut rank = vec![0; order.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        (rank, order.iter().map(|&i| self.names[i as usize].clone()).collect())
    }
}

/// Columns of [`rollup`]'s output being built (AP and shop as dictionary ranks).
struct Sorted {
    second: Vec<i64>,
    mac: Vec<u64>,
    ap: Vec<u64>,
    shop: Vec<IdxSize>,
    hour: Vec<i64>,
    rssi_min: Vec<i32>,
    rssi_max: Vec<i32>,
}

/// One range's part of [`Sorted`]'s columns.
struct SortedPart<'a> {
    second: &'a mut [i64],
    mac: &'a mut [u64],
    ap: &'a mut [u64],
    shop: &'a mut [IdxSize],
    hour: &'a mut [i64],
    rssi_min: &'a mut [i32],
    rssi_max: &'a mut [i32],
}

impl Sorted {
    fn with_capacity(n: usize) -> Self {
        Sorted {
            second: Vec::with_capacity(n),
            mac: Vec::with_capacity(n),
            ap: Vec::with_capacity(n),
            shop: Vec::with_capacity(n),
            hour: Vec::with_capacity(n),
            rssi_min: Vec::with_capacity(n),
            rssi_max: Vec::with_capacity(n),
        }
    }

    fn zeroed(n: usize) -> Self {
        Sorted {
            second: vec![0; n],
            mac: vec![0; n],
            ap: vec![0; n],
            shop: vec![0; n],
            hour: vec![0; n],
            rssi_min: vec![0; n],
            rssi_max: vec![0; n],
        }
    }

    /// The columns cut into consecutive parts of `sizes` rows.
    fn split(&mut self, sizes: &[usize]) -> Vec<SortedPart<'_>> {
        fn cut<'a, T>(mut v: &'a mut [T], sizes: &[usize]) -> Vec<&'a mut [T]> {
            sizes
                .iter()
                .map(|&n| {
                    let (head, rest) = std::mem::take(&mut v).split_at_mut(n);
                    v = rest;
                    head
                })
                .collect()
        }
        let mut second = cut(&mut self.second, sizes).into_iter();
        let mut mac = cut(&mut self.mac, sizes).into_iter();
        let mut ap = cut(&mut self.ap, sizes).into_iter();
        let mut shop = cut(&mut self.shop, sizes).into_iter();
        let mut hour = cut(&mut self.hour, sizes).into_iter();
        let mut rssi_min = cut(&mut self.rssi_min, sizes).into_iter();
        let mut rssi_max = cut(&mut self.rssi_max, sizes).into_iter();
        (0..sizes.len())
            .filter_map(|_| {
                Some(SortedPart {
                    second: second.next()?,
                    mac: mac.next()?,
                    ap: ap.next()?,
                    shop: shop.next()?,
                    hour: hour.next()?,
                    rssi_min: rssi_min.next()?,
                    rssi_max: rssi_max.next()?,
                })
            })
            .collect()
    }
}

/// A day with at least this many files keeps its whole rollup in the state, so that an update
/// adding files to it reads that rollup and the new files' segments instead of every segment:
/// a collector flushing every minute writes 1,440 files a day, an hourly one 24 (below this,
/// where reading the segments is cheap and a kept rollup would double the state).
pub const KEEP_ROLLUP_FILES: usize = 48;

/// What is known of a day's kept rollup when its tables are computed again.
#[derive(Clone, Copy)]
pub struct Kept<'a> {
    /// The committed version of the day's kept rollup, if any.
    pub version: Option<u32>,
    /// The files this run added to the day, when none of the day's files changed (the kept
    /// rollup plus these segments is the day); `None`: rebuild from every segment.
    pub added: Option<&'a [String]>,
}

/// The rollup of one day: the kept rollup merged with the added files' segments when it
/// covers the rest, else every segment of the files that have records on it. Merging is
/// associative and duplicate-insensitive, so both give the same rows.
///
/// `bound` (at least the day's segment rows; 0 if unknown) sizes the buffers once: grown as
/// segments arrive, a 7 M-row day's keys were copied into a buffer twice as large several
/// times, a quarter of a 50 M-record run's page faults. Room reserved but not written costs
/// no memory.
pub fn load_day(
    state: &State,
    by_day: &BTreeMap<i32, Vec<&str>>,
    day: i32,
    kept: Kept,
    bound: usize,
) -> Result<DataFrame> {
    let files = by_day.get(&day).map(Vec::as_slice).unwrap_or_default();
    if files.is_empty() {
        bail!("no segments for {}", day_str(day));
    }
    // Rows are numbered with u32s.
    let rows = std::sync::Mutex::new(Gathered::with_capacity(bound.min(u32::MAX as usize)));
    let add = |df: &DataFrame, n: usize| rows.lock().unwrap_or_else(|e| e.into_inner()).add(df, n);
    match (kept.version, kept.added) {
        (Some(v), Some(added)) => {
            add(&state.get_rollup(day, v)?, 1)?;
            crate::par::map(added, |rel| add(&state.get_segment(day, rel)?, 1))?;
        }
        _ => {
            crate::par::map(files, |rel| add(&state.get_segment(day, rel)?, files.len()))?;
        }
    }
    let pos = rows.into_inner().unwrap_or_else(|e| e.into_inner()).finish();
    // The segments and sort keys are gone; give their pages back before the day's tables.
    super::release_memory();
    pos
}

/// One probe file after ingest: its pseudonyms (keyed mode) and its new state record.
pub struct Processed {
    pub names: Vec<(u64, String)>,
    pub rel: String,
    pub rec: FileRecord,
}

/// Validates every file's footer first (a bad file fails the run before anything is written),
/// then parses each file and writes its per-day segments, files in parallel.
pub fn ingest_files(
    plan: &Plan,
    dims: &Dims,
    work: &[ProbeFile],
    state: &State,
    progress: Progress,
) -> Result<Vec<Processed>> {
    let layouts: Vec<ingest::FileLayout> = crate::par::map(work, |f| ingest::inspect(&plan.probes, f))?;
    let bar = progress.bar(work.len() as u64, "reading");
    let first_written = std::sync::Once::new();
    let jobs: Vec<(&ProbeFile, ingest::FileLayout)> = work.iter().zip(layouts).collect();
    let processed = crate::par::map(&jobs, |&(f, layout)| {
        let rel = &f.entry.rel;
        let mut ctx = IngestCtx::new(&plan.settings, dims);
        let parsed = ingest::parse(plan.probes.get(rel)?, &plan.probes.show(rel), f, layout, &mut ctx)?;
        let mut days = Vec::new();
        let newest_event = parsed.events.second.iter().max().copied();
        for (day, mut segment) in events_to_segments(&parsed.events)? {
            state.put_segment(day, rel, &mut segment)?;
            days.push(day);
            first_written.call_once(|| fault::point("after-first-segment"));
        }
        bar.inc(1);
        Ok(Processed {
            names: parsed.names,
            rel: rel.clone(),
            rec: FileRecord {
                size: f.entry.size,
                e_tag: f.entry.e_tag.clone(),
                last_modified: f.entry.last_modified,
                days,
                part_date: f.part_date,
                part_hour: f.part_hour,
                quality: parsed.quality,
                newest_event,
            },
        })
    })?;
    bar.finish_and_clear();
    Ok(processed)
}

/// What recording the ingested files changed.
pub struct Recorded {
    /// Days whose data changed (new files' days, and every day a changed file had).
    pub changed: BTreeSet<i32>,
    /// Per changed day that no changed file touches: the new files with records on it.
    pub added: BTreeMap<i32, Vec<String>>,
    /// (id, pseudonym) of the devices read (keyed mode).
    pub names: Vec<(u64, String)>,
}

/// Records ingested files in the manifest being built; a changed file's segments of days it no
/// longer has are retracted.
pub fn record_files(
    manifest: &mut Manifest,
    processed: Vec<Processed>,
    state: &State,
    report: &mut Report,
) -> Result<Recorded> {
    let mut changed = BTreeSet::new();
    let (mut added, mut retouched): (BTreeMap<i32, Vec<String>>, BTreeSet<i32>) = Default::default();
    let mut names = Vec::new();
    let mut records = Vec::with_capacity(processed.len());
    report.files_read = processed.len();
    for Processed { names: n, rel, rec } in processed {
        names.extend(n);
        if let Some(prev) = manifest.get(&rel) {
            for d in &prev.days {
                if !rec.days.contains(d) {
                    state.delete_segment(*d, &rel)?;
                }
                changed.insert(*d);
                retouched.insert(*d);
            }
            retouched.extend(rec.days.iter().copied());
        } else {
            for d in &rec.days {
                added.entry(*d).or_default().push(rel.clone());
            }
        }
        changed.extend(rec.days.iter().copied());
        report.rows_read += rec.quality.rows_read;
        report.rows_rejected += rec.quality.rejected.iter().sum::<i64>();
        records.push((rel, rec));
    }
    manifest.insert(records);
    added.retain(|d, _| !retouched.contains(d));
    Ok(Recorded { changed, added, names })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids by view (up to 12 bytes) and by string (longer) number the distinct strings in order
    /// of first appearance, as a plain map of the strings does.
    #[test]
    fn dictionary_ids_match_a_plain_map() {
        let words = [
            "S1",
            "",
            "S10",
            "S1",
            "shop-twelve!",
            "shop-twelve?",
            "shop-thirteen",
            "shop-thirteen",
            "S10",
            "",
            "shop-twelve!",
            "a",
            "shop-thirteeN",
            "S1\0",
        ];
        // Two chunks: ids carry across chunks.
        let mut ca = StringChunked::from_iter_values("s".into(), words[..7].iter().copied());
        ca.append(&StringChunked::from_iter_values("s".into(), words[7..].iter().copied())).unwrap();
        assert_eq!(ca.chunks().len(), 2);
        let mut dict = Dict::default();
        let ids = dict.ids_of(&ca);
        let mut plain: std::collections::HashMap<&str, u32> = Default::default();
        let expected: Vec<u32> = words
            .iter()
            .map(|w| {
                let n = plain.len() as u32;
                *plain.entry(w).or_insert(n)
            })
            .collect();
        assert_eq!(ids, expected);
        let mut by_id: Vec<(&str, u32)> = plain.into_iter().collect();
        by_id.sort_by_key(|(_, id)| *id);
        assert_eq!(dict.names(), by_id.iter().map(|(w, _)| w.to_string()).collect::<Vec<_>>());
    }

    /// Pseudo-random numbers below `m` (an LCG), the same for a seed.
    fn numbers(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |m| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % m
        }
    }

    /// A file's segments, built from its parsed columns, are a plain fold of its events into an
    /// ordered map per local day — rows out of order, repeated keys, shop ids not in string
    /// order, late rows on the next day — and a file without events has no segment.
    #[test]
    fn segments_of_parsed_events_equal_a_plain_fold() {
        let mut rnd = numbers(5);
        let shop_names: Vec<String> = ["S9", "S10", "A1"].map(String::from).to_vec();
        let mut ev = ingest::Events { shop_names, ..Default::default() };
        for _ in 0..5_000 {
            let t = 86_400 * 20 + 86_000 + rnd(800) as i64; // across midnight (UTC days)
            ev.second.push(t);
            ev.day.push(t.div_euclid(86_400) as i32);
            ev.hour.push(t - t.rem_euclid(3600));
            ev.mac.push(rnd(40));
            ev.ap.push(rnd(3));
            ev.shop.push(rnd(3) as u32);
            ev.rssi.push(-(rnd(100) as i32));
        }
        type Row = (i64, u64, u64, String, i64, i32, i32);
        let mut plain: BTreeMap<i32, BTreeMap<(i64, u64, u64, String), (i64, i32, i32)>> = BTreeMap::new();
        for i in 0..ev.len() {
            let key = (ev.second[i], ev.mac[i], ev.ap[i], ev.shop_names[ev.shop[i] as usize].clone());
            let e = plain.entry(ev.day[i]).or_default().entry(key).or_insert((ev.hour[i], ev.rssi[i], ev.rssi[i]));
            (e.1, e.2) = (e.1.min(ev.rssi[i]), e.2.max(ev.rssi[i]));
        }
        let got: Vec<(i32, Vec<Row>)> = events_to_segments(&ev)
            .unwrap()
            .into_iter()
            .map(|(day, df)| {
                let c = |n: &str| df.column(n).unwrap().clone();
                let (t, m, a, s) = (c("second"), c(MAC), c("ap_mac"), c("shop_code"));
                let (h, lo, hi) = (c("hour"), c("rssi_min"), c("rssi_max"));
                let rows = (0..df.height())
                    .map(|i| {
                        (
                            t.i64().unwrap().get(i).unwrap(),
                            m.u64().unwrap().get(i).unwrap(),
                            a.u64().unwrap().get(i).unwrap(),
                            s.str().unwrap().get(i).unwrap().to_string(),
                            h.i64().unwrap().get(i).unwrap(),
                            lo.i32().unwrap().get(i).unwrap(),
                            hi.i32().unwrap().get(i).unwrap(),
                        )
                    })
                    .collect();
                (day, rows)
            })
            .collect();
        let want: Vec<(i32, Vec<Row>)> = plain
            .into_iter()
            .map(|(day, m)| (day, m.into_iter().map(|((t, d, a, s), (h, lo, hi))| (t, d, a, s, h, lo, hi)).collect()))
            .collect();
        assert_eq!(got.len(), 2, "two local days");
        assert_eq!(got, want);
        assert!(events_to_segments(&ingest::Events::default()).unwrap().is_empty());
    }

    /// The merge in any number of parts gives the rows of a plain fold of the keys into an
    /// ordered map — also with a run of equal keys longer than several parts, with late rows
    /// merged in, and with no keys.
    #[test]
    fn merge_in_ranges_equals_a_plain_fold() {
        let mut rnd = numbers(11);
        let mut keys: Vec<Key> = (0..20_000).map(|_| (rnd(500) as i64, rnd(5), rnd(3), rnd(4) as u32, 0)).collect();
        // A run of 8,000 equal keys across the middle.
        keys.extend((0..8_000).map(|_| (250, 2, 1, 1, 0)));
        keys.sort_by(by_key);
        for (row, k) in keys.iter_mut().enumerate() {
            k.4 = row as u32;
        }
        let n = keys.len();
        let hour: Vec<i64> = keys.iter().map(|k| k.0 / 100 * 100).collect();
        let lo: Vec<i32> = (0..n).map(|_| -(rnd(90) as i32)).collect();
        let hi: Vec<i32> = lo.iter().map(|l| l + rnd(10) as i32).collect();
        let mut plain: BTreeMap<(i64, u64, u64, u32), (i64, i32, i32)> = BTreeMap::new();
        for k in &keys {
            let r = k.4 as usize;
            let e = plain.entry((k.0, k.1, k.2, k.3)).or_insert((hour[r], lo[r], hi[r]));
            (e.1, e.2) = (e.1.min(lo[r]), e.2.max(hi[r]));
        }
        // The same keys as two sorted runs: the second holds every tenth of the first half too
        // (late rows).
        let moved = |i: usize| i < n / 2 && i % 10 == 0;
        let first: Vec<Key> = (0..n / 2).filter(|&i| !moved(i)).map(|i| keys[i]).collect();
        let mut second: Vec<Key> = (0..n).filter(|&i| i >= n / 2 || moved(i)).map(|i| keys[i]).collect();
        second.sort_by(by_key);
        let runs = [0..first.len(), first.len()..n];
        let mut split: Vec<Key> = first.into_iter().chain(second).collect();
        let with_late = order_keys(&mut split, &runs);
        assert!(!with_late.late.is_empty() && with_late.main.len() == 2, "the late rows are set aside");
        let whole = Order { main: vec![0..n], late: Vec::new() };
        for (keys, order) in [(&keys, &whole), (&split, &with_late)] {
            for parts in [1, 2, 3, 7, 64] {
                let out = merge(keys, order, (&hour, &lo, &hi), parts).unwrap();
                let got: Vec<_> = (0..out.second.len())
                    .map(|i| {
                        let key = (out.second[i], out.mac[i], out.ap[i], out.shop[i] as u32);
                        (key, (out.hour[i], out.rssi_min[i], out.rssi_max[i]))
                    })
                    .collect();
                assert_eq!(got, plain.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), "{parts} parts");
            }
        }
        let none = Order { main: vec![0..0], late: Vec::new() };
        assert_eq!(merge(&[], &none, (&[], &[], &[]), 3).unwrap().second.len(), 0);
    }

    /// Each shortcut of `order_keys` gives the order of a plain sort (rows with equal keys in
    /// any order, as the merge after it takes their min and max).
    #[test]
    fn order_keys_matches_a_plain_sort() {
        let mut rnd = numbers(7);
        // (second range start, width) of each part; sorted: each part sorted by the full key.
        let cases: [(&[(i64, i64)], bool); 7] = [
            (&[(7200, 3600), (0, 3600), (3600, 3600)], true), // disjoint hours, any order
            (&[(0, 3600), (3500, 3600)], true),               // overlapping: late rows
            (&[(3500, 3600), (0, 3600), (7000, 3600)], true), // late rows, parts out of order
            (&[(0, 3600), (0, 3600)], true),                  // half the rows late: sorted whole
            (&[(0, 600)], false),                             // one file in time order
            (&[(0, 600), (0, 600)], false),                   // unsorted parts
            (&[(0, 50), (50, 0), (50, 50)], true),            // an empty part
        ];
        for (parts, sorted) in cases {
            let (mut keys, mut runs) = (Vec::new(), Vec::new());
            for &(start, width) in parts {
                let from = keys.len();
                let mut part: Vec<Key> = (0..width * 2)
                    .map(|_| (start + rnd(width.max(1) as u64) as i64, rnd(4), rnd(3), rnd(3) as u32, 0))
                    .collect();
                match sorted {
                    true => part.sort(),
                    false => part.sort_by_key(|k| k.0),
                }
                keys.extend(part);
                runs.push(from..keys.len());
            }
            if parts.len() > 1 && !sorted {
                // Unsorted parts: shuffle the second one.
                let r = runs[1].clone();
                keys[r].reverse();
            }
            for (row, k) in keys.iter_mut().enumerate() {
                k.4 = row as u32;
            }
            let mut expected = keys.clone();
            expected.sort_by(by_key);
            let order = order_keys(&mut keys, &runs);
            let got: Vec<Key> = order.rows(&keys, None, None).copied().collect();
            let project = |v: &[Key]| v.iter().map(|k| (k.0, k.1, k.2, k.3)).collect::<Vec<_>>();
            assert_eq!(project(&got), project(&expected), "{parts:?}");
            let rows = |v: &[Key]| {
                let mut r: Vec<u32> = v.iter().map(|k| k.4).collect();
                r.sort();
                r
            };
            assert_eq!(rows(&got), rows(&expected));
        }
    }
}
