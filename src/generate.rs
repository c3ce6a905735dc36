//! A synthetic mall, deterministic by seed: shops and APs on a floor plan, opening hours and
//! a daily/weekly arrival curve, returning customers at daily/weekly/occasional rhythms,
//! multi-shop walks with log-normal dwell, probes every 10–120 s also heard by a
//! neighbouring AP, passers-by with weak signal, staff present all day, randomised MACs that
//! change daily, visits across midnight, late records landing in later hour partitions,
//! redelivered duplicates, a small share of bad rows, and three file layouts (typed with
//! epoch seconds, typed with millisecond timestamps, and the original all-string layout).
//!
//! Files are written with arrow-rs (not Polars), so the reader is tested against an
//! independent Parquet writer. Days are simulated in parallel; files are written in parallel.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rayon::prelude::*;

use crate::mac::format_mac;
use crate::progress::Progress;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenSpec {
    pub out: PathBuf,
    pub days: u32,
    pub visitors: u32,
    pub shops: u32,
    /// Staff devices; `None` = one per two shops.
    pub staff: Option<u32>,
    pub timezone: String,
    pub start: NaiveDate,
    pub seed: u64,
    /// The last this many days are written one file per minute (`probes-<seed>-m<MM>.parquet`
    /// in the hour's partition), as a collector flushing every minute would.
    pub minute_files_days: u32,
}

#[derive(Debug, Default)]
pub struct GenReport {
    pub records: u64,
    pub files: usize,
    pub bytes: u64,
}

/// One probe record before it is written.
#[derive(Clone, Copy)]
struct Rec {
    t: i64,
    /// Partition hour (UTC epoch hour) the collector writes it in.
    part: i64,
    mac: u64,
    shop: u16,
    /// Index of the AP (== shop index; `n_shops` is the AP of the unknown shop).
    ap: u16,
    rssi: i16,
    /// 0 = good; otherwise a kind of corruption.
    bad: u8,
    /// Sub-second part in ms (for timestamp files).
    ms: u16,
}

struct Mall {
    n: usize,
    xy: Vec<(f64, f64)>,
    neighbour: Vec<usize>,
    popularity: Vec<f64>,
    codes: Vec<String>,
    aps: Vec<u64>,
}

const NAMES: [&str; 20] = [
    "Coffee",
    "Books",
    "Shoes",
    "Fashion",
    "Sports",
    "Toys",
    "Phones",
    "Beauty",
    "Jewellery",
    "Bakery",
    "Noodles",
    "Cinema",
    "Grocery",
    "Home",
    "Kids",
    "Optics",
    "Tea",
    "Pharmacy",
    "Games",
    "Outdoor",
];

fn mall(n: usize) -> Mall {
    let cols = (n as f64).sqrt().ceil() as usize;
    let xy: Vec<(f64, f64)> =
        (0..n).map(|i| ((i % cols) as f64 * 20.0 + 10.0, (i / cols) as f64 * 15.0 + 7.5)).collect();
    let neighbour = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i)
                .min_by(|&a, &b| dist(xy[i], xy[a]).partial_cmp(&dist(xy[i], xy[b])).unwrap())
                .unwrap_or(i)
        })
        .collect();
    // Zipf-like popularity.
    let popularity: Vec<f64> = (0..n).map(|i| 1.0 / (1.0 + i as f64).powf(0.8)).collect();
    let codes = (0..n).map(|i| format!("S{:03}", i + 1)).collect();
    let aps = (0..=n).map(|i| 0x001a_2b00_0000 + i as u64 * 7 + 1).collect();
    Mall { n, xy, neighbour, popularity, codes, aps }
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

fn pick(rng: &mut SmallRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Customers: a MAC and a probability of coming on a given day.
fn customers(spec: &GenSpec) -> Vec<(u64, f64)> {
    let mut rng = SmallRng::seed_from_u64(spec.seed ^ 0xC057);
    let pool = spec.visitors as usize * 4;
    (0..pool)
        .map(|i| {
            // Globally administered MACs (bit 0x02 of the first octet clear).
            let mac = (rng.gen::<u64>() & 0x0000_fcff_ffff_ffff) | (i as u64 & 0xff);
            let r = rng.gen::<f64>();
            let p = if r < 0.05 {
                0.8 // daily
            } else if r < 0.30 {
                0.25 // weekly
            } else {
                0.21 // occasional
            };
            (mac, p)
        })
        .collect()
}

const HOUR_WEIGHTS: [f64; 12] = [1.0, 2.0, 4.0, 4.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 4.0, 2.0];

fn local_ts(tz: &Tz, date: NaiveDate, secs: i64) -> i64 {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap();
    let base = tz
        .from_local_datetime(&midnight)
        .earliest()
        .map(|d| d.timestamp())
        .unwrap_or_else(|| midnight.and_utc().timestamp());
    base + secs
}

struct DayGen<'a> {
    rng: SmallRng,
    mall: &'a Mall,
    recs: Vec<Rec>,
    /// Its own stream: the probe records do not depend on whether sales are drawn.
    sales_rng: SmallRng,
    tz: &'a Tz,
    sales: Vec<Sale>,
}

/// One POS transaction before it is written.
#[derive(Clone, Copy)]
struct Sale {
    t: i64,
    shop: u16,
    cents: i64,
}

/// A shop category's chance that a visit of 5 minutes or more buys, and its mean ticket
/// (currency units), by [`NAMES`] index: food converts often and cheaply, jewellery rarely
/// and dearly.
const SALES: [(f64, f64); 20] = [
    (0.55, 32.0),   // Coffee
    (0.18, 85.0),   // Books
    (0.12, 420.0),  // Shoes
    (0.10, 380.0),  // Fashion
    (0.10, 450.0),  // Sports
    (0.15, 160.0),  // Toys
    (0.04, 2600.0), // Phones
    (0.20, 260.0),  // Beauty
    (0.03, 5200.0), // Jewellery
    (0.45, 28.0),   // Bakery
    (0.60, 45.0),   // Noodles
    (0.70, 60.0),   // Cinema
    (0.65, 120.0),  // Grocery
    (0.08, 600.0),  // Home
    (0.15, 220.0),  // Kids
    (0.06, 900.0),  // Optics
    (0.50, 25.0),   // Tea
    (0.40, 70.0),   // Pharmacy
    (0.12, 300.0),  // Games
    (0.08, 700.0),  // Outdoor
];

impl DayGen<'_> {
    fn emit(&mut self, t: i64, mac: u64, shop: usize, rssi: i16) {
        let ms = self.rng.gen_range(0..1000);
        self.recs.push(Rec { t, part: t.div_euclid(3600), mac, shop: shop as u16, ap: shop as u16, rssi, bad: 0, ms });
    }

    /// A stay at a shop from `t0` for `dwell` seconds; probes every `every` seconds.
    fn stay(&mut self, mac: u64, shop: usize, t0: i64, dwell: i64, every: i64) {
        let mut t = t0;
        let end = t0 + dwell;
        while t <= end {
            let rssi = (-55.0 + self.rng.gen_range(-12.0..12.0f64)).round() as i16;
            self.emit(t, mac, shop, rssi.min(-20));
            if self.rng.gen_bool(0.4) {
                let nb = self.mall.neighbour[shop];
                let weak = self.rng.gen_range(-92..=-74);
                self.emit(t, mac, nb, weak);
            }
            t += self.rng.gen_range(every / 2..=every + every / 2).max(1);
        }
    }

    /// A visit of 5 minutes or more may end in a sale: more likely in the evening.
    fn maybe_buy(&mut self, shop: usize, t0: i64, dwell: i64) {
        let (p, mean) = SALES[shop % SALES.len()];
        let hour =
            chrono::Timelike::hour(&chrono::DateTime::from_timestamp(t0, 0).unwrap_or_default().with_timezone(self.tz));
        let p = if hour >= 18 { p * 1.25 } else { p };
        if dwell < 300 || !self.sales_rng.gen_bool(p.min(1.0)) {
            return;
        }
        let price = LogNormal::new(mean.ln() - 0.18, 0.6).unwrap().sample(&mut self.sales_rng);
        let t = t0 + dwell * 4 / 5;
        self.sales.push(Sale { t, shop: shop as u16, cents: (price * 100.0).round().max(1.0) as i64 });
    }

    /// A walk through 1–6 shops starting at `t0`; returns the end time.
    fn walk(&mut self, mac: u64, mut t: i64, dwell: &LogNormal<f64>) -> i64 {
        let every = self.rng.gen_range(10..=120);
        let stops = 1 + (self.rng.gen::<f64>().ln() / 0.55f64.ln()).floor().min(5.0) as usize;
        let mut prev = usize::MAX;
        for _ in 0..stops {
            let mut shop = pick(&mut self.rng, &self.mall.popularity);
            if shop == prev {
                shop = (shop + 1) % self.mall.n;
            }
            let d = dwell.sample(&mut self.rng).clamp(30.0, 4.0 * 3600.0) as i64;
            self.stay(mac, shop, t, d, every);
            self.maybe_buy(shop, t, d);
            // Sometimes come back to the same shop after a break longer than the visit gap.
            if self.rng.gen_bool(0.08) {
                let back = t + d + self.rng.gen_range(700..2400);
                self.stay(mac, shop, back, d / 2, every);
                t = back + d / 2;
            } else {
                t += d;
            }
            // Walking to the next shop: heard weakly on the way.
            let walk = self.rng.gen_range(60..240);
            let past = self.rng.gen_range(0..self.mall.n);
            let weak = self.rng.gen_range(-95..=-78);
            self.emit(t + walk / 2, mac, past, weak);
            t += walk;
            prev = shop;
        }
        t
    }
}

fn simulate_day(spec: &GenSpec, tz: &Tz, mall: &Mall, pool: &[(u64, f64)], d: u32) -> (Vec<Rec>, Vec<Sale>) {
    let date = spec.start + chrono::Duration::days(d as i64);
    let seed = spec.seed.wrapping_mul(0x9E37_79B9).wrapping_add(d as u64 * 7919);
    let mut g = DayGen {
        rng: SmallRng::seed_from_u64(seed),
        mall,
        recs: Vec::new(),
        sales_rng: SmallRng::seed_from_u64(seed ^ 0x5a1e5),
        tz,
        sales: Vec::new(),
    };
    let weekday = chrono::Datelike::weekday(&date).num_days_from_monday();
    let busy = if weekday >= 5 { 1.3 } else { 0.9 };
    let dwell = LogNormal::new((8.0f64 * 60.0).ln(), 0.9).unwrap();
    let open = local_ts(tz, date, 10 * 3600);
    // Customers.
    for &(mac, p) in pool {
        if !g.rng.gen_bool((p * busy).min(1.0)) {
            continue;
        }
        // 15% of phones show a randomised MAC, a new one every day.
        let mac = if g.rng.gen_bool(0.15) { (g.rng.gen::<u64>() & 0xffff_ffff_ffff) | 0x0200_0000_0000 } else { mac };
        let h = pick(&mut g.rng, &HOUR_WEIGHTS) as i64;
        let start = open + h * 3600 + g.rng.gen_range(0..3600);
        g.walk(mac, start, &dwell);
    }
    // Passers-by: heard briefly, weakly, near the entrance shops.
    let passers = (spec.visitors as f64 * 0.3 * busy) as usize;
    for _ in 0..passers {
        let mac = g.rng.gen::<u64>() & 0x0000_fcff_ffff_ffff;
        let t = open + g.rng.gen_range(0..12 * 3600);
        let shop = g.rng.gen_range(0..mall.n.min(4));
        for k in 0..g.rng.gen_range(1..=3) {
            let rssi = g.rng.gen_range(-95..=-72);
            g.emit(t + k * 20, mac, shop, rssi);
        }
    }
    // Staff: one device per two shops, 09:30–21:30 at their shop.
    for s in 0..spec.staff.map(|n| n as usize).unwrap_or((mall.n / 2).max(1)) {
        let mac = 0x0050_5600_0000 + s as u64;
        let t0 = local_ts(tz, date, 9 * 3600 + 1800) + g.rng.gen_range(0..600);
        g.stay(mac, s * 2 % mall.n, t0, 12 * 3600, 60);
    }
    // Late-night cinema: a few visits across local midnight.
    let cinema = mall.n - 1;
    for _ in 0..(spec.visitors / 200).max(1) {
        let mac = pool[g.rng.gen_range(0..pool.len())].0;
        let t0 = local_ts(tz, date, 23 * 3600 + 1200) + g.rng.gen_range(0..600);
        let dwell = 3600 + g.rng.gen_range(0..1800);
        g.stay(mac, cinema, t0, dwell, 60);
    }
    // Collector effects: unknown shop, late files, duplicates, bad rows.
    let n = g.recs.len();
    for i in 0..n {
        let r = g.rng.gen::<f64>();
        if r < 0.002 {
            g.recs[i].shop = mall.n as u16; // not in area_shop
            g.recs[i].ap = mall.n as u16;
        }
        if g.rng.gen_bool(0.02) {
            g.recs[i].part += g.rng.gen_range(1..=3);
        }
        if g.rng.gen_bool(0.001) {
            g.recs[i].bad = g.rng.gen_range(1..=6);
        }
    }
    for i in 0..n {
        if g.rng.gen_bool(0.01) {
            let mut dup = g.recs[i];
            if g.rng.gen_bool(0.3) {
                dup.part += 1; // redelivered in a later file
            }
            g.recs.push(dup);
        }
    }
    (g.recs, g.sales)
}

/// Writes the POS feed: `sales/date=<local date>/pos-1.csv` per date with every sale (2 % are
/// refunded later the same day), and `pos-2-resend.csv`, a re-send of 3 % of them (a fifth
/// with a corrected amount, some of those also a day later) that wins by its later path
/// (docs/tables.md, sales).
fn write_sales(spec: &GenSpec, tz: &Tz, mall: &Mall, sales: &[Sale]) -> Result<usize> {
    let dir = spec.out.join("sales");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let mut rng = SmallRng::seed_from_u64(spec.seed ^ 0x9051);
    let mut by_date: std::collections::BTreeMap<NaiveDate, (String, String)> = Default::default();
    let head = "transaction_id,shop_code,sold_at,amount\n";
    let money =
        |c: i64| format!("{}{}.{:02}", if c < 0 { "-" } else { "" }, c.unsigned_abs() / 100, c.unsigned_abs() % 100);
    for (i, s) in sales.iter().enumerate() {
        let date = chrono::DateTime::from_timestamp(s.t, 0).unwrap_or_default().with_timezone(tz).date_naive();
        let (pos, resend) = by_date.entry(date).or_insert_with(|| (head.to_string(), head.to_string()));
        let (id, shop) = (format!("T{}-{i}", spec.seed), &mall.codes[s.shop as usize]);
        pos.push_str(&format!("{id},{shop},{},{}\n", s.t, money(s.cents)));
        if rng.gen_bool(0.02) {
            pos.push_str(&format!("{id}-R,{shop},{},{}\n", s.t + 1800, money(-s.cents)));
        }
        if rng.gen_bool(0.03) {
            let fix = rng.gen_bool(0.2);
            let cents = if fix { s.cents * 9 / 10 } else { s.cents };
            // One correction in two also moves the sale a day later (the till's clock fixed).
            let t = if fix && i % 2 == 0 { s.t + 86_400 } else { s.t };
            resend.push_str(&format!("{id},{shop},{t},{}\n", money(cents)));
        }
    }
    let mut files = 0;
    for (date, (pos, resend)) in by_date {
        let d = dir.join(format!("date={date}"));
        fs::create_dir_all(&d)?;
        fs::write(d.join("pos-1.csv"), pos)?;
        fs::write(d.join("pos-2-resend.csv"), resend)?;
        files += 2;
    }
    Ok(files)
}

fn layout_of(part: i64, seed: u64) -> u8 {
    ((part as u64).wrapping_mul(2654435761).wrapping_add(seed) % 3) as u8
}

fn mac_text(mac: u64, style: u32) -> String {
    let s = format_mac(mac);
    match style {
        0..=6 => s,
        7 | 8 => s.to_uppercase().replace(':', "-"),
        _ => s.replace(':', ""),
    }
}

fn write_file(path: &Path, recs: &[Rec], mall: &Mall, layout: u8, seed: u64) -> Result<u64> {
    let n = recs.len();
    let unknown = "S999".to_string();
    let mut rng = SmallRng::seed_from_u64(seed ^ recs.first().map(|r| r.part as u64).unwrap_or(0));
    let mut shop = Vec::with_capacity(n);
    let mut mac = Vec::with_capacity(n);
    let mut ap = Vec::with_capacity(n);
    let mut t_int = Vec::with_capacity(n);
    let mut t_txt: Vec<Option<String>> = Vec::with_capacity(n);
    let mut r_int = Vec::with_capacity(n);
    let mut r_txt: Vec<Option<String>> = Vec::with_capacity(n);
    let mut ap_ip = Vec::with_capacity(n);
    for r in recs {
        let style = rng.gen_range(0..10);
        let code = if (r.shop as usize) < mall.n { &mall.codes[r.shop as usize] } else { &unknown };
        let mut s = Some(code.clone());
        let mut m = Some(mac_text(r.mac, style));
        let mut a = Some(mac_text(mall.aps[r.ap as usize], 0));
        let mut t = Some(r.t);
        let mut rs = Some(r.rssi as i64);
        let mut t_bad_text = None;
        match r.bad {
            1 => t = None,
            2 => m = Some("zz:zz:zz:zz:zz:zz".into()),
            3 => m = None,
            4 => rs = Some(if rng.gen_bool(0.5) { 7 } else { -130 }),
            5 => s = Some(String::new()),
            6 => {
                a = Some("not-a-mac".into());
                t_bad_text = Some("yesterday".to_string());
            }
            _ => {}
        }
        ap_ip.push(Some(format!("10.0.{}.{}", r.ap / 200, r.ap % 200 + 1)));
        shop.push(s);
        mac.push(m);
        ap.push(a);
        match layout {
            1 => {
                t_txt.push(t_bad_text.or(t.map(|v| v.to_string())));
                r_txt.push(rs.map(|v| v.to_string()));
            }
            2 => {
                t_int.push(t.map(|v| v * 1000 + r.ms as i64));
                r_int.push(rs.map(|v| v as i32));
            }
            _ => {
                t_int.push(t);
                r_int.push(rs.map(|v| v as i32));
            }
        }
    }
    let (t_field, t_arr): (Field, ArrayRef) = match layout {
        1 => (Field::new("occur_time", DataType::Utf8, true), Arc::new(StringArray::from(t_txt))),
        2 => (
            Field::new("occur_time", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Arc::new(TimestampMillisecondArray::from(t_int)),
        ),
        _ => (Field::new("occur_time", DataType::Int64, true), Arc::new(Int64Array::from(t_int))),
    };
    let (r_field, r_arr): (Field, ArrayRef) = match layout {
        1 => (Field::new("rssi", DataType::Utf8, true), Arc::new(StringArray::from(r_txt))),
        _ => (Field::new("rssi", DataType::Int32, true), Arc::new(Int32Array::from(r_int))),
    };
    let pt: Vec<Option<String>> = recs.iter().map(|r| Some(format!("{}", r.part))).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("shop_code", DataType::Utf8, true),
        Field::new("ap_ip", DataType::Utf8, true),
        t_field,
        Field::new("user_device_mac", DataType::Utf8, true),
        r_field,
        Field::new("ap_mac", DataType::Utf8, true),
        Field::new("pt", DataType::Utf8, true),
    ]));
    let ids: Vec<Option<String>> = vec![None; n];
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(shop)),
            Arc::new(StringArray::from(ap_ip)),
            t_arr,
            Arc::new(StringArray::from(mac)),
            r_arr,
            Arc::new(StringArray::from(ap)),
            Arc::new(StringArray::from(pt)),
        ],
    )?;
    fs::create_dir_all(path.parent().unwrap())?;
    let file = fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
    w.write(&batch)?;
    w.close()?;
    Ok(fs::metadata(path)?.len())
}

fn write_dims(spec: &GenSpec, mall: &Mall, pool: &[(u64, f64)]) -> Result<()> {
    let dims = spec.out.join("dims");
    fs::create_dir_all(&dims)?;
    let mut shops = String::from("id,shop_code,shop_name,floor,category\n");
    let mut aps = String::from("ap_mac,shop_code,x,y,floor\n");
    for i in 0..mall.n {
        let cat = NAMES[i % NAMES.len()];
        shops.push_str(&format!(
            "{},{},{} {},1,{}\n",
            i + 1,
            mall.codes[i],
            cat,
            i / NAMES.len() + 1,
            cat.to_lowercase()
        ));
        aps.push_str(&format!("{},{},{},{},1\n", format_mac(mall.aps[i]), mall.codes[i], mall.xy[i].0, mall.xy[i].1));
    }
    fs::write(dims.join("area_shop.csv"), shops)?;
    fs::write(dims.join("ap_info.csv"), aps)?;
    let mut places = String::from("user_device_mac,used_x,used_y,min_rssi\n");
    let mut rng = SmallRng::seed_from_u64(spec.seed ^ 0x91ACE);
    for (mac, _) in pool {
        if !rng.gen_bool(0.3) {
            continue;
        }
        let (x, y) = (rng.gen_range(0.0..200.0f64), rng.gen_range(0.0..100.0f64));
        places.push_str(&format!("{},{:.1},{:.1},{}\n", format_mac(*mac), x, y, rng.gen_range(-90..-60)));
    }
    fs::write(dims.join("place_info.csv"), places)?;
    let toml = format!(
        "# written by `footfall generate --seed {}`\n[mall]\ntimezone = \"{}\"\n\n[input]\nprobes = \"probes\"\ndims = \"dims\"\nsales = \"sales\"\n\n[output]\ndir = \"out\"\n",
        spec.seed, spec.timezone
    );
    fs::write(spec.out.join("footfall.toml"), toml)?;
    Ok(())
}

/// Generates the mall into `spec.out`.
pub fn generate(spec: &GenSpec, progress: Progress) -> Result<GenReport> {
    let tz = crate::timeutil::parse_tz(&spec.timezone)?;
    if spec.shops < 2 || spec.shops > 999 {
        return Err(crate::error::usage(format!("--shops: must be within 2..=999, got {}", spec.shops)));
    }
    let mall = mall(spec.shops as usize);
    let pool = customers(spec);
    let probes = spec.out.join("probes");
    if probes.exists() {
        fs::remove_dir_all(&probes).with_context(|| format!("cannot clear {}", probes.display()))?;
    }
    write_dims(spec, &mall, &pool)?;
    let days: Vec<(Vec<Rec>, Vec<Sale>)> =
        (0..spec.days).into_par_iter().map(|d| simulate_day(spec, &tz, &mall, &pool, d)).collect();
    let sales: Vec<Sale> = days.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    write_sales(spec, &tz, &mall, &sales)?;
    // Bucket by partition hour, keeping generation order.
    let mut by_part: std::collections::BTreeMap<i64, Vec<Rec>> = std::collections::BTreeMap::new();
    for (day, _) in days {
        for r in day {
            by_part.entry(r.part).or_default().push(r);
        }
    }
    // Hours from this one on are split into minute files.
    let minutes_from =
        by_part.keys().next_back().map_or(i64::MAX, |last| last + 1 - 24 * spec.minute_files_days as i64);
    let mut files: Vec<(i64, Option<i64>, Vec<Rec>)> = Vec::new();
    for (part, mut recs) in by_part {
        recs.sort_by_key(|r| r.t);
        if part < minutes_from {
            files.push((part, None, recs));
            continue;
        }
        let mut by_minute: std::collections::BTreeMap<i64, Vec<Rec>> = std::collections::BTreeMap::new();
        for r in recs {
            by_minute.entry(r.t.div_euclid(60).rem_euclid(60)).or_default().push(r);
        }
        files.extend(by_minute.into_iter().map(|(m, recs)| (part, Some(m), recs)));
    }
    let bar = progress.bar(files.len() as u64, "writing");
    let written: Vec<(u64, u64)> = files
        .into_par_iter()
        .map(|(part, minute, recs)| {
            let start = chrono::DateTime::from_timestamp(part * 3600, 0).unwrap();
            let name = match minute {
                None => format!("probes-{}.parquet", spec.seed),
                Some(m) => format!("probes-{}-m{m:02}.parquet", spec.seed),
            };
            let path = probes
                .join(format!("date={}", start.format("%Y-%m-%d")))
                .join(format!("hour={}", start.format("%H")))
                .join(name);
            let size = write_file(&path, &recs, &mall, layout_of(part, spec.seed), spec.seed)?;
            bar.inc(1);
            Ok::<_, anyhow::Error>((size, recs.len() as u64))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    Ok(GenReport {
        records: written.iter().map(|w| w.1).sum(),
        files: written.len(),
        bytes: written.iter().map(|w| w.0).sum(),
    })
}
