//! Stage 1, probe files → typed, normalised events, with every rejected row counted by reason.
//!
//! Two steps per file. [`inspect`] reads only the Parquet footer (arrow-rs, through
//! object_store) and decides how each required column is parsed; it runs for every
//! candidate file before any work, so a file with a missing or mistyped column fails the
//! run before anything is published. [`parse`] then reads the projected columns with Polars
//! and normalises them in one pass: MACs to `u64`, times to epoch seconds with their local
//! date and hour. Rows are never dropped silently: each one is either an event or a count
//! in [`FileQuality`].

use std::collections::HashSet;
use std::io::Cursor;

use anyhow::{anyhow, bail, Context, Result};
use arrow::datatypes::DataType as ArrowType;
use bytes::Bytes;
use polars::prelude::*;

pub use super::plan::{discover, ProbeFile};
use crate::mac::{is_randomized, parse_mac, MacKey};
use crate::schema::MAC;
pub use crate::state::{FileQuality, REASONS};
use crate::store::Location;
use crate::timeutil::LocalClock;

/// How a column is stored in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Integer,
    Text,
    /// Timestamp with this many units per second.
    Timestamp(i64),
}

/// The parse plan of one file, from its footer.
#[derive(Debug, Clone, Copy)]
pub struct FileLayout {
    pub occur_time: Layout,
    pub rssi: Layout,
}

pub const REQUIRED: [&str; 5] = ["occur_time", MAC, "ap_mac", "shop_code", "rssi"];

/// Reads a file's footer and decides how to parse it. Errors name the file and column.
pub fn inspect(probes: &Location, file: &ProbeFile) -> Result<FileLayout> {
    let name = probes.show(&file.entry.rel);
    let size = file.entry.size;
    if size < 12 {
        bail!("{name}: not a Parquet file ({size} bytes)");
    }
    let tail = probes.get_range(&file.entry.rel, size - 8..size)?;
    if &tail[4..8] != b"PAR1" {
        bail!("{name}: not a Parquet file (no PAR1 footer)");
    }
    let meta_len = u32::from_le_bytes(tail[0..4].try_into().unwrap()) as u64;
    if meta_len + 12 > size {
        bail!("{name}: corrupt Parquet footer");
    }
    let meta = probes.get_range(&file.entry.rel, size - 8 - meta_len..size - 8)?;
    let md = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&meta)
        .with_context(|| format!("{name}: unreadable Parquet footer"))?;
    let fm = md.file_metadata();
    let schema = parquet::arrow::parquet_to_arrow_schema(fm.schema_descr(), fm.key_value_metadata())
        .with_context(|| format!("{name}: unreadable Parquet schema"))?;
    layout_of(&name, &schema)
}

fn layout_of(name: &str, schema: &arrow::datatypes::Schema) -> Result<FileLayout> {
    let find = |col: &str| -> Result<ArrowType> {
        schema
            .field_with_name(col)
            .map(|f| f.data_type().clone())
            .map_err(|_| anyhow!("{name}: missing required column '{col}'"))
    };
    let classify = |col: &str, allow_ts: bool| -> Result<Layout> {
        let dt = find(col)?;
        Ok(match unwrap_dict(&dt) {
            t if t.is_integer() => Layout::Integer,
            ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => Layout::Text,
            ArrowType::Timestamp(unit, _) if allow_ts => Layout::Timestamp(match unit {
                arrow::datatypes::TimeUnit::Second => 1,
                arrow::datatypes::TimeUnit::Millisecond => 1_000,
                arrow::datatypes::TimeUnit::Microsecond => 1_000_000,
                arrow::datatypes::TimeUnit::Nanosecond => 1_000_000_000,
            }),
            other => bail!(
                "{name}: column '{col}' has type {other}; accepted: integer, string{}",
                if allow_ts { ", timestamp" } else { "" }
            ),
        })
    };
    for col in [MAC, "ap_mac", "shop_code"] {
        match unwrap_dict(&find(col)?) {
            ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => {}
            other => bail!("{name}: column '{col}' has type {other}; accepted: string"),
        }
    }
    Ok(FileLayout { occur_time: classify("occur_time", true)?, rssi: classify("rssi", false)? })
}

fn unwrap_dict(dt: &ArrowType) -> &ArrowType {
    match dt {
        ArrowType::Dictionary(_, v) => v,
        other => other,
    }
}

/// Indices into [`REASONS`], in check order.
pub mod reason {
    pub const TIME_MISSING: usize = 0;
    pub const TIME_INVALID: usize = 1;
    pub const TIME_OUT_OF_RANGE: usize = 2;
    pub const MAC_MISSING: usize = 3;
    pub const MAC_INVALID: usize = 4;
    pub const AP_MISSING: usize = 5;
    pub const AP_INVALID: usize = 6;
    pub const SHOP_MISSING: usize = 7;
    pub const RSSI_MISSING: usize = 8;
    pub const RSSI_INVALID: usize = 9;
    pub const RSSI_OUT_OF_RANGE: usize = 10;
}

/// What parsing needs besides the file.
pub struct IngestCtx<'a> {
    pub clock: LocalClock,
    /// Accepted event times, epoch seconds `[min, max]` (inclusive): anything else is
    /// `occur_time_out_of_range` (a collector writing milliseconds or nanoseconds as seconds).
    pub valid_times: (i64, i64),
    pub known_shops: &'a HashSet<String>,
    /// Known AP MACs (ap_info); `None` leaves `unknown_ap_rows` null.
    pub known_aps: Option<&'a HashSet<u64>>,
    pub exclude_randomized: bool,
    /// With a key, device MACs become keyed ids (see [`MacKey`]) right here, so no raw MAC
    /// goes past parsing.
    pub key: Option<&'a MacKey>,
}

impl<'a> IngestCtx<'a> {
    /// The parse context of a run: the mall's clock and settings (with the accepted time
    /// window), the dimensions' keys.
    pub fn new(settings: &'a crate::config::Settings, dims: &'a crate::dims::Dims) -> IngestCtx<'a> {
        IngestCtx {
            clock: LocalClock::new(settings.tz),
            valid_times: (settings.occur_time_min, settings.occur_time_max - 1),
            known_shops: &dims.known_shops,
            known_aps: dims.known_aps.as_ref(),
            exclude_randomized: settings.exclude_randomized,
            key: settings.mac_key.as_ref(),
        }
    }
}

/// One file's accepted events and its quality row.
pub struct Parsed {
    pub events: Events,
    pub quality: FileQuality,
    /// With a key: (id, pseudonym) of every device in `events`.
    pub names: Vec<(u64, String)>,
}

/// A file's accepted events, column by column, in file order: the segment builder
/// ([`crate::pipeline::rollup::events_to_segments`]) takes its keys straight from these
/// vectors, and [`Events::frame`] gives the same rows as a frame (`sql`, tests).
#[derive(Default)]
pub struct Events {
    /// Epoch seconds.
    pub second: Vec<i64>,
    /// Local date, days since the epoch.
    pub day: Vec<i32>,
    /// Start of the local clock hour, epoch seconds.
    pub hour: Vec<i64>,
    pub mac: Vec<u64>,
    pub ap: Vec<u64>,
    /// Index into `shop_names`.
    pub shop: Vec<u32>,
    /// The file's distinct shop codes of accepted rows (and maybe a few of rejected ones).
    pub shop_names: Vec<String>,
    pub rssi: Vec<i32>,
}

impl Events {
    pub fn len(&self) -> usize {
        self.second.len()
    }

    pub fn is_empty(&self) -> bool {
        self.second.is_empty()
    }

    /// Columns: second (i64 epoch s), day (i32), hour (i64 epoch s), user_device_mac (u64),
    /// ap_mac (u64), shop_code (str), rssi (i32).
    pub fn frame(self) -> Result<DataFrame> {
        let shop_col = StringChunked::from_iter_values("shop_code".into(), self.shop_names.iter().map(String::as_str))
            .take(self.shop.as_slice())?;
        Ok(DataFrame::new(
            self.second.len(),
            vec![
                Column::new("second".into(), self.second),
                Column::new("day".into(), self.day),
                Column::new("hour".into(), self.hour),
                Column::new(MAC.into(), self.mac),
                Column::new("ap_mac".into(), self.ap),
                shop_col.into_column(),
                Column::new("rssi".into(), self.rssi),
            ],
        )?)
    }

    /// The local days the events fall on, each with its rows (ascending); one day holding
    /// every row (an hourly file without late rows) costs no index.
    pub fn days(&self) -> Vec<(i32, Option<Vec<u32>>)> {
        let Some(&first) = self.day.first() else { return vec![] };
        if self.day.iter().all(|&d| d == first) {
            return vec![(first, None)];
        }
        let mut by_day: std::collections::BTreeMap<i32, Vec<u32>> = Default::default();
        for (i, &d) in self.day.iter().enumerate() {
            by_day.entry(d).or_default().push(i as u32);
        }
        by_day.into_iter().map(|(d, rows)| (d, Some(rows))).collect()
    }
}

fn as_text(df: &DataFrame, col: &str, name: &str) -> Result<StringChunked> {
    let s = df.column(col)?.as_materialized_series();
    let s = s
        .cast(&DataType::String)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{name}: column '{col}' is not text"))?;
    Ok(s.str()?.clone())
}

/// An integer or timestamp column as `i64`; unsigned values beyond `i64::MAX` saturate (so
/// they fail the range checks instead of turning into nulls, which would read as "missing").
fn as_i64(df: &DataFrame, col: &str) -> Result<Int64Chunked> {
    let s = df.column(col)?.as_materialized_series();
    let s = match s.dtype() {
        DataType::Datetime(_, _) => s.to_physical_repr().into_owned(),
        DataType::UInt64 => {
            let ca: Int64Chunked = s.u64()?.iter().map(|v| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))).collect();
            ca.into_series()
        }
        _ => s.cast(&DataType::Int64)?,
    };
    Ok(s.i64()?.clone())
}

/// Parses one file's bytes. `name` is used in messages.
///
/// The three text columns are read as Parquet stores them when it can: a dictionary of the
/// column chunk's distinct strings and each row's index into it (arrow-rs, [`dictionary_texts`]),
/// so a row's MAC, AP and shop are found by index, each distinct value parsed once, with no
/// per-row string hashing. Polars reads the other two columns, and all five when the
/// dictionary read is not possible (a codec this build lacks, or any read error: Polars'
/// reader then reports the file's error as before).
pub fn parse(bytes: Bytes, name: &str, file: &ProbeFile, layout: FileLayout, ctx: &mut IngestCtx) -> Result<Parsed> {
    let mut texts = dictionary_texts(&bytes).unwrap_or_default();
    let mut cols: Vec<String> = vec!["occur_time".into(), "rssi".into()];
    cols.extend(TEXTS.iter().zip(&texts).filter(|(_, t)| t.is_none()).map(|(c, _)| c.to_string()));
    let df = ParquetReader::new(Cursor::new(bytes))
        .with_columns(Some(cols))
        .finish()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{name}: cannot read Parquet data"))?;
    for (t, c) in texts.iter_mut().zip(TEXTS) {
        if t.is_none() {
            *t = Some(Texts::Polars(as_text(&df, c, name)?));
        }
    }
    let [Some(mac), Some(ap), Some(shop)] = texts else { unreachable!("each text column is read") };
    parse_columns(&df, [mac, ap, shop], name, file, layout, ctx)
}

/// The text columns, in [`parse_columns`]' order.
const TEXTS: [&str; 3] = [MAC, "ap_mac", "shop_code"];

/// The MAC, AP and shop columns of a file that are read as dictionary arrays (arrow-rs), or
/// `None` when the file cannot be read that way.
fn dictionary_texts(bytes: &Bytes) -> Option<[Option<Texts>; 3]> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Field, Int32Type, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::basic::Compression;
    let meta = ArrowReaderMetadata::load(bytes, ArrowReaderOptions::new()).ok()?;
    let descr = meta.metadata().file_metadata().schema_descr_ptr();
    let row_groups = meta.metadata().row_groups();
    // Columns whose every chunk is dictionary pages in a codec this build reads.
    let (mut which, mut leaves) = (Vec::new(), Vec::new());
    for name in TEXTS {
        let leaf = descr.columns().iter().position(|c| c.path().string() == name)?;
        let chunks = row_groups.iter().map(|rg| rg.column(leaf));
        if chunks
            .into_iter()
            .all(|c| matches!(c.compression(), Compression::UNCOMPRESSED | Compression::SNAPPY) && keys_only(c))
        {
            which.push(name);
            leaves.push(leaf);
        }
    }
    if which.is_empty() {
        return None;
    }
    let dict = ArrowType::Dictionary(Box::new(ArrowType::Int32), Box::new(ArrowType::Utf8));
    let fields: Vec<Field> = meta
        .schema()
        .fields()
        .iter()
        .map(|f| match which.contains(&f.name().as_str()) {
            true => Field::new(f.name(), dict.clone(), true),
            false => f.as_ref().clone(),
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(std::sync::Arc::new(Schema::new(fields)));
    let meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), options).ok()?;
    let mask = parquet::arrow::ProjectionMask::leaves(&descr, leaves.iter().copied());
    let rows = meta.metadata().file_metadata().num_rows().max(1) as usize;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), meta)
        .with_projection(mask)
        .with_batch_size(rows)
        .build()
        .ok()?;
    let mut cols: [Option<Vec<DictChunk>>; 3] = TEXTS.map(|c| which.contains(&c).then(Vec::new));
    for batch in reader {
        let batch = batch.ok()?;
        for (c, name) in cols.iter_mut().zip(TEXTS) {
            let Some(c) = c else { continue };
            let a = batch.column_by_name(name)?.as_dictionary_opt::<Int32Type>()?;
            let strings = a.values().as_string_opt::<i32>()?.clone();
            c.push(DictChunk { keys: a.keys().clone(), values: a.values().clone(), strings });
        }
    }
    Some(cols.map(|c| c.map(Texts::Dictionary)))
}

/// Whether a column chunk's data pages all hold dictionary keys. Writers switch to plain pages
/// once a dictionary reaches a limit (1 MiB in arrow-rs and parquet-mr: an hour of a large
/// mall's MACs), and reading those as a dictionary re-hashes every value. The footer does not
/// say which pages are plain, but their size does: keys take at most 4 bytes a row, a plain
/// MAC at least 4 + 12. A misjudged chunk is only slower, never read differently.
fn keys_only(c: &parquet::file::metadata::ColumnChunkMetaData) -> bool {
    let Some(dict) = c.dictionary_page_offset() else { return false };
    let data = c.compressed_size() - (c.data_page_offset() - dict);
    c.num_values() > 0 && data <= 4 * c.num_values()
}

/// One batch of a dictionary-read text column: each row's key into `strings` (`values` is the
/// same array, kept to tell a dictionary shared by batches).
struct DictChunk {
    keys: arrow::array::Int32Array,
    values: arrow::array::ArrayRef,
    strings: arrow::array::StringArray,
}

/// A text column: Polars' strings, or arrow dictionary arrays (one per batch read).
enum Texts {
    Polars(StringChunked),
    Dictionary(Vec<DictChunk>),
}

impl Texts {
    /// Each row's index into `f` of the column's distinct values (see [`distinct`]). For
    /// dictionary arrays these are the dictionaries' entries, `f` called once per entry (a
    /// dictionary shared by batches of one column chunk once); nulls share one entry.
    fn distinct<'a, T>(&'a self, mut f: impl FnMut(Option<&'a str>) -> T) -> (Vec<u32>, Vec<T>) {
        use arrow::array::Array;
        let arrays = match self {
            Texts::Polars(ca) => return distinct(ca, f),
            Texts::Dictionary(arrays) => arrays,
        };
        let (mut ids, mut vals) = (Vec::with_capacity(arrays.iter().map(|a| a.keys.len()).sum()), Vec::new());
        let mut null = None;
        let mut last: Option<(&arrow::array::ArrayRef, u32)> = None;
        for DictChunk { keys, values, strings } in arrays {
            let base = match last {
                Some((v, base)) if std::sync::Arc::ptr_eq(v, values) => base,
                _ => {
                    let base = vals.len() as u32;
                    vals.extend(strings.iter().map(&mut f));
                    last = Some((values, base));
                    base
                }
            };
            for (i, &k) in keys.values().iter().enumerate() {
                let valid = keys.is_valid(i) && (k as u32 as usize) < strings.len() && strings.is_valid(k as usize);
                ids.push(match valid {
                    true => base + k as u32,
                    false => *null.get_or_insert_with(|| {
                        vals.push(f(None));
                        (vals.len() - 1) as u32
                    }),
                });
            }
        }
        (ids, vals)
    }
}

/// Parses an in-memory frame holding the required columns.
pub fn parse_frame(
    df: &DataFrame,
    name: &str,
    file: &ProbeFile,
    layout: FileLayout,
    ctx: &mut IngestCtx,
) -> Result<Parsed> {
    let [mac, ap, shop] = TEXTS.map(|c| as_text(df, c, name).map(Texts::Polars));
    parse_columns(df, [mac?, ap?, shop?], name, file, layout, ctx)
}

/// Parses the time and RSSI columns of `df`, the three text columns given beside them.
fn parse_columns(
    df: &DataFrame,
    texts: [Texts; 3],
    name: &str,
    file: &ProbeFile,
    layout: FileLayout,
    ctx: &mut IngestCtx,
) -> Result<Parsed> {
    let n = df.height();
    let [macs, aps, shops] = &texts;
    let (t_int, t_txt) = match layout.occur_time {
        Layout::Text => (None, Some(as_text(df, "occur_time", name)?)),
        _ => (Some(as_i64(df, "occur_time")?), None),
    };
    let (r_int, r_txt) = match layout.rssi {
        Layout::Text => (None, Some(as_text(df, "rssi", name)?)),
        _ => (Some(as_i64(df, "rssi")?), None),
    };
    let per_second = match layout.occur_time {
        Layout::Timestamp(k) => k,
        _ => 1,
    };

    let mut q = FileQuality { rows_read: n as i64, ..Default::default() };
    let mut ev = Events {
        second: Vec::with_capacity(n),
        day: Vec::with_capacity(n),
        hour: Vec::with_capacity(n),
        mac: Vec::with_capacity(n),
        ap: Vec::with_capacity(n),
        shop: Vec::with_capacity(n),
        shop_names: Vec::new(),
        rssi: Vec::with_capacity(n),
    };
    // Text columns are judged once per distinct value (see `distinct`); a row holds indices.
    let (mac_ids, mac_vals) = macs.distinct(|v| match v {
        None | Some("") => Err(reason::MAC_MISSING),
        Some(s) => parse_mac(s).ok_or(reason::MAC_INVALID),
    });
    let (ap_ids, ap_vals) = aps.distinct(|v| match v {
        None | Some("") => Err(reason::AP_MISSING),
        Some(s) => match parse_mac(s) {
            None => Err(reason::AP_INVALID),
            Some(ap) => Ok((ap, ctx.known_aps.is_none_or(|k| k.contains(&ap)))),
        },
    });
    // Shops as ids into the file's distinct codes: one known-shop lookup per code, not per row.
    let mut shop_index: PlHashMap<&str, u32> = PlHashMap::new();
    let (shop_ids, shop_vals) = shops.distinct(|v| match v {
        None | Some("") => Err(reason::SHOP_MISSING),
        Some(s) => Ok((
            *shop_index.entry(s).or_insert_with(|| {
                ev.shop_names.push(s.to_owned());
                (ev.shop_names.len() - 1) as u32
            }),
            ctx.known_shops.contains(s),
        )),
    });
    // The two readers of `parse` read one file; a file they disagree on is refused, not indexed.
    if [mac_ids.len(), ap_ids.len(), shop_ids.len()] != [n; 3] {
        bail!("{name}: the text columns do not have the file's {n} rows");
    }
    // Per distinct MAC value: whether an accepted row has it.
    let mut mac_accepted = vec![false; mac_vals.len()];
    let mut ids: PlHashMap<u64, u64> = PlHashMap::new();
    let mut names = Vec::new();
    let part = file.partition_start();
    let mut late = 0i64;
    let mut unknown_aps = 0i64;

    let (t_min, t_max) = ctx.valid_times;
    let mut t_int_it = t_int.as_ref().map(|ca| ca.iter());
    let mut t_txt_it = t_txt.as_ref().map(|ca| ca.iter());
    let mut r_int_it = r_int.as_ref().map(|ca| ca.iter());
    let mut r_txt_it = r_txt.as_ref().map(|ca| ca.iter());
    for i in 0..n {
        let t_v = match (&mut t_int_it, &mut t_txt_it) {
            (Some(it), _) => match it.next().flatten() {
                None => Err(reason::TIME_MISSING),
                Some(v) => Ok(v.div_euclid(per_second)),
            },
            (_, Some(it)) => match it.next().flatten().map(str::trim) {
                None | Some("") => Err(reason::TIME_MISSING),
                Some(s) => parse_epoch_text(s).ok_or(reason::TIME_INVALID),
            },
            _ => unreachable!("one of the two forms is read"),
        };
        let r_v = match (&mut r_int_it, &mut r_txt_it) {
            (Some(it), _) => it.next().flatten().ok_or(reason::RSSI_MISSING),
            (_, Some(it)) => match it.next().flatten().map(str::trim) {
                None | Some("") => Err(reason::RSSI_MISSING),
                Some(s) => s.parse::<i64>().map_err(|_| reason::RSSI_INVALID),
            },
            _ => unreachable!("one of the two forms is read"),
        };
        let t = t_v.and_then(|t| if (t_min..=t_max).contains(&t) { Ok(t) } else { Err(reason::TIME_OUT_OF_RANGE) });
        let mac_id = mac_ids[i] as usize;
        let accepted = (|| -> Result<(i64, u64, (u64, bool), (u32, bool), i32), usize> {
            let (t, mac) = (t?, mac_vals[mac_id]?);
            let (ap, shop) = (ap_vals[ap_ids[i] as usize]?, shop_vals[shop_ids[i] as usize]?);
            let rssi = r_v?;
            if !(-120..=0).contains(&rssi) {
                return Err(reason::RSSI_OUT_OF_RANGE);
            }
            Ok((t, mac, ap, shop, rssi as i32))
        })();
        match accepted {
            Err(r) => q.rejected[r] += 1,
            Ok((t, mac, (ap, ap_known), (shop_id, shop_known), rssi)) => {
                q.rows_accepted += 1;
                mac_accepted[mac_id] = true;
                if !shop_known {
                    q.unknown_shop_rows += 1;
                }
                if !ap_known {
                    unknown_aps += 1;
                }
                if let Some(p) = part {
                    if t < p || t >= p + 3600 {
                        late += 1;
                    }
                }
                let randomized = is_randomized(mac);
                if randomized {
                    q.randomized_rows += 1;
                    if ctx.exclude_randomized {
                        continue;
                    }
                }
                let (day, hour) = ctx.clock.day_and_hour(t);
                ev.second.push(t);
                ev.day.push(day);
                ev.hour.push(hour);
                ev.mac.push(match ctx.key {
                    None => mac,
                    Some(k) => *ids.entry(mac).or_insert_with(|| {
                        let (id, name) = k.id(mac);
                        names.push((id, name));
                        id
                    }),
                });
                ev.ap.push(ap);
                ev.shop.push(shop_id);
                ev.rssi.push(rssi);
            }
        }
    }
    // Distinct devices: unequal views may spell one MAC, so count MACs, not views.
    let devices: PlHashSet<u64> =
        mac_vals.iter().zip(&mac_accepted).filter(|(_, &a)| a).filter_map(|(m, _)| m.ok()).collect();
    q.distinct_devices = devices.len() as i64;
    q.late_rows = part.map(|_| late);
    q.unknown_ap_rows = ctx.known_aps.map(|_| unknown_aps);
    Ok(Parsed { events: ev, quality: q, names })
}

/// `f` of each value of a text column, computed once per distinct value of each chunk
/// (see [`distinct`]), row order kept.
pub(crate) fn per_distinct<'a, T: Copy>(ca: &'a StringChunked, f: impl FnMut(Option<&'a str>) -> T) -> Vec<T> {
    let (ids, vals) = distinct(ca, f);
    ids.iter().map(|&i| vals[i as usize]).collect()
}

/// Each row's index into `f` of the column's distinct values, `f` computed once per distinct
/// value of each chunk. Parquet dictionary pages decode to copies of the dictionary's views, and
/// within one chunk equal views hold equal bytes (short strings are inline, long ones point at
/// the same buffer offset): so a probe file's few APs and shops, and its devices' repeated MACs,
/// are parsed and looked up once instead of per row, and a row carries a 4-byte index instead
/// of the result. Unequal views may still be equal strings (plain-encoded pages); `f` is then
/// merely called again. Nulls share one entry.
///
/// A chunk whose first [`PROBE_ROWS`] rows are mostly unequal views (a big file's MACs past
/// its writer's dictionary limit are plain: each row's bytes are its own) is not looked up
/// further: each of its rows gets its own entry, `f` called per row instead of a hash lookup
/// that would find nothing.
pub(crate) fn distinct<'a, T>(ca: &'a StringChunked, mut f: impl FnMut(Option<&'a str>) -> T) -> (Vec<u32>, Vec<T>) {
    let mut ids = Vec::with_capacity(ca.len());
    let mut vals = Vec::new();
    let mut null = None;
    let mut seen: PlHashMap<u128, u32> = PlHashMap::new();
    for arr in ca.downcast_iter() {
        seen.clear();
        let mut lookup = true;
        for (i, (view, v)) in arr.views().iter().zip(arr.iter()).enumerate() {
            if i == PROBE_ROWS && seen.len() > PROBE_ROWS / 2 {
                lookup = false;
            }
            let mut new = |v| {
                vals.push(f(v));
                (vals.len() - 1) as u32
            };
            ids.push(match v {
                None => *null.get_or_insert_with(|| new(None)),
                Some(s) if lookup => *seen.entry(view.as_u128()).or_insert_with(|| new(Some(s))),
                Some(s) => new(Some(s)),
            });
        }
    }
    (ids, vals)
}

/// Rows of a chunk after which [`distinct`] judges whether looking views up pays.
const PROBE_ROWS: usize = 4096;

/// Epoch seconds from decimal text: an integer, or a decimal fraction truncated to its second.
pub(crate) fn parse_epoch_text(s: &str) -> Option<i64> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    let (int, frac) = s.split_once('.')?;
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let neg = int.starts_with('-');
    let v: i64 = if int == "-" || int.is_empty() { 0 } else { int.parse().ok()? };
    // Truncate towards the earlier second, as for finer timestamps.
    Some(if neg && frac.bytes().any(|b| b != b'0') { v - 1 } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entry;

    fn ctx(shops: &HashSet<String>) -> IngestCtx<'_> {
        IngestCtx {
            clock: LocalClock::new(chrono_tz::UTC),
            // The default window, 2000-01-01 .. before 2100-01-01.
            valid_times: (946_684_800, 4_102_444_799),
            known_shops: shops,
            known_aps: None,
            exclude_randomized: false,
            key: None,
        }
    }

    fn file(rel: &str) -> ProbeFile {
        ProbeFile::new(Entry { rel: rel.into(), size: 0, e_tag: None, last_modified: 0 })
    }

    #[test]
    fn every_rejection_reason_is_counted_once() {
        // One row per reason (in REASONS order), then two good rows.
        let t = "1772445600"; // 2026-03-02T10:00:00Z
        let m = "0C-BB-CC-DD-EE-01"; // 0x0c: globally administered
        let a = "00:1a:00:00:00:01";
        let rows: [(Option<&str>, Option<&str>, Option<&str>, Option<&str>, Option<&str>); 13] = [
            (None, Some(m), Some(a), Some("S1"), Some("-50")),
            (Some("soon"), Some(m), Some(a), Some("S1"), Some("-50")),
            (Some("1772445600000"), Some(m), Some(a), Some("S1"), Some("-50")),
            (Some(t), Some(""), Some(a), Some("S1"), Some("-50")),
            (Some(t), Some("aa:bb"), Some(a), Some("S1"), Some("-50")),
            (Some(t), Some(m), None, Some("S1"), Some("-50")),
            (Some(t), Some(m), Some("zz:1a:00:00:00:01"), Some("S1"), Some("-50")),
            (Some(t), Some(m), Some(a), Some(""), Some("-50")),
            (Some(t), Some(m), Some(a), Some("S1"), None),
            (Some(t), Some(m), Some(a), Some("S1"), Some("-5o")),
            (Some(t), Some(m), Some(a), Some("S1"), Some("-121")),
            (Some(t), Some(m), Some(a), Some("S9"), Some("0")),
            (Some("1772449200.75"), Some("02bbccddee02"), Some(a), Some("S1"), Some(" -120 ")),
        ];
        let df = df!(
            "occur_time" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "user_device_mac" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "ap_mac" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "shop_code" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "rssi" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )
        .unwrap();
        let shops: HashSet<String> = ["S1".to_string()].into();
        let layout = FileLayout { occur_time: Layout::Text, rssi: Layout::Text };
        let p = parse_frame(&df, "t", &file("date=2026-03-02/hour=10/a.parquet"), layout, &mut ctx(&shops)).unwrap();
        assert_eq!(p.quality.rejected, [1; REASONS.len()]);
        assert_eq!(p.quality.rows_read, 13);
        assert_eq!(p.quality.rows_accepted, 2);
        assert_eq!(p.quality.unknown_shop_rows, 1);
        assert_eq!(p.quality.randomized_rows, 1);
        assert_eq!(p.quality.distinct_devices, 2);
        // The second good row (11:00:00.75) is outside the 10:00 partition hour.
        assert_eq!(p.quality.late_rows, Some(1));
        let secs = p.events.second.clone();
        assert_eq!(secs, [1772445600, 1772449200]);
        let macs = p.events.mac.clone();
        assert_eq!(macs, [0x0cbbccddee01, 0x02bbccddee02]);
        let rssi = p.events.rssi.clone();
        assert_eq!(rssi, [0, -120]);
    }

    /// Judging a value once per distinct view gives what judging every row gives: on a
    /// column read back from dictionary-encoded Parquet (shared views, so fewer calls than
    /// rows), on long and short strings, nulls, and a column of two chunks.
    #[test]
    fn per_distinct_equals_a_per_row_map() {
        let vals: Vec<Option<String>> = (0..3000)
            .map(|i: u64| match i % 7 {
                0 => None,
                1 => Some(format!("S{}", i % 3)),
                _ => Some(format!("{:02x}:00:00:00:00:{:02x}", i % 5, i % 11)),
            })
            .collect();
        let mut df = df!("v" => vals.clone()).unwrap();
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
        let read = ParquetReader::new(Cursor::new(buf)).finish().unwrap();
        let mut two = StringChunked::from_iter(vals.iter().map(|v| v.as_deref()));
        two.append(&StringChunked::from_iter(vals.iter().rev().map(|v| v.as_deref()))).unwrap();
        assert_eq!(two.chunks().len(), 2);
        let f = |v: Option<&str>| v.map(|s| (s.len(), parse_mac(s)));
        for ca in [read.column("v").unwrap().str().unwrap().clone(), two] {
            let mut calls = 0;
            let got = per_distinct(&ca, |v| {
                calls += 1;
                f(v)
            });
            let want: Vec<_> = ca.iter().map(f).collect();
            assert_eq!(got, want);
            if ca.chunks().len() == 1 {
                assert!(calls < ca.len() / 2, "{calls} calls for {} rows: views are not shared", ca.len());
            }
        }
    }

    /// Past the probe, a chunk of mostly distinct values is mapped row by row and one of
    /// repeated values keeps being looked up; both give each row its own value's result.
    #[test]
    fn distinct_judges_each_chunk_after_its_probe() {
        let n = 3 * PROBE_ROWS;
        let unique: Vec<Option<String>> = (0..n)
            .map(|i| (i % 1000 != 0).then(|| format!("aa:bb:{:02x}:{:02x}:00:01", i / 256 % 256, i % 256)))
            .collect();
        let repeated: Vec<String> = (0..n).map(|i| format!("cc:dd:ee:ff:00:{:02x}", i % 50)).collect();
        let f = |v: Option<&str>| v.map(parse_mac);
        // Read back from Parquet, repeated values are dictionary entries: equal views.
        let mut df = df!("v" => repeated).unwrap();
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
        let read = ParquetReader::new(Cursor::new(buf)).finish().unwrap();
        let repeated = read.column("v").unwrap().str().unwrap().rechunk().into_owned();
        let unique = StringChunked::from_iter(unique.iter().map(|v| v.as_deref()));
        for (ca, max_calls) in [(unique, n), (repeated, n / 10)] {
            let mut calls = 0;
            let got = per_distinct(&ca, |v| {
                calls += 1;
                f(v)
            });
            assert_eq!(got, ca.iter().map(f).collect::<Vec<_>>());
            assert!(calls <= max_calls, "{calls} calls for {n} rows");
        }
    }

    #[test]
    fn typed_layouts_and_timestamp_truncation() {
        let shops: HashSet<String> = ["S1".to_string()].into();
        let base = df!(
            "user_device_mac" => ["aabbccddeeff", "aabbccddeeff", "aabbccddeeff"],
            "ap_mac" => ["00:1a:00:00:00:01"; 3],
            "shop_code" => ["S1"; 3],
            "rssi" => [Some(-50i32), None, Some(-60)],
        )
        .unwrap();
        // Integer epoch seconds.
        let mut df = base.clone();
        df.with_column(Column::new("occur_time".into(), [Some(1772445600i64), Some(1772445601), None])).unwrap();
        let layout = FileLayout { occur_time: Layout::Integer, rssi: Layout::Integer };
        let p = parse_frame(&df, "t", &file("a.parquet"), layout, &mut ctx(&shops)).unwrap();
        assert_eq!(p.quality.rejected[reason::TIME_MISSING], 1, "null occur_time");
        assert_eq!(p.quality.rejected[reason::RSSI_MISSING], 1, "null rssi");
        assert_eq!(p.quality.late_rows, None, "no partition hour in the path");
        // Millisecond timestamps are truncated to their second.
        let mut df = base.clone();
        let ms = Series::new("occur_time".into(), [1772445600999i64, 1772445601000, 1772445601001])
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .unwrap();
        df.with_column(ms.into_column()).unwrap();
        let layout = FileLayout { occur_time: Layout::Timestamp(1000), rssi: Layout::Integer };
        let p = parse_frame(&df, "t", &file("a.parquet"), layout, &mut ctx(&shops)).unwrap();
        let secs = p.events.second.clone();
        assert_eq!(secs, [1772445600, 1772445601]);
    }

    /// Reading text columns as Parquet's dictionaries (arrow-rs) gives what Polars' strings
    /// give, row for row: several row groups (a dictionary each), nulls, blanks, invalid and
    /// equal-but-differently-spelled MACs. A column written plain (all distinct) and a codec the
    /// dictionary read is built without leave the column to Polars.
    #[test]
    fn dictionary_texts_parse_like_polars_strings() {
        let n = 5000u64;
        let pick = |i: u64, k: u64| (i * 2654435761) % k;
        let mac = |i: u64| match pick(i, 97) {
            0 => None,
            1 => Some(String::new()),
            2 => Some("not-a-mac".to_string()),
            3 => Some(format!("0C-BB-CC-DD-EE-{:02X}", pick(i, 50))),
            v => Some(format!("0c:bb:cc:dd:{:02x}:{:02x}", v % 3, pick(i, 50))),
        };
        let df = df!(
            "occur_time" => (0..n).map(|i| (i % 11 != 0).then_some(1772445600 + (i as i64) / 2)).collect::<Vec<_>>(),
            "user_device_mac" => (0..n).map(mac).collect::<Vec<_>>(),
            "ap_mac" => (0..n).map(|i| match pick(i, 41) {
                0 => None,
                1 => Some("zz".to_string()),
                v => Some(format!("00:1a:00:00:00:{v:02x}")),
            }).collect::<Vec<_>>(),
            // All distinct: Polars writes it plain.
            "shop_code" => (0..n).map(|i| (i % 13 != 0).then(|| format!("S{i}"))).collect::<Vec<_>>(),
            "rssi" => (0..n).map(|i| -(pick(i, 130) as i32)).collect::<Vec<_>>(),
        )
        .unwrap();
        let shops: HashSet<String> = (0..n).step_by(3).map(|i| format!("S{i}")).collect();
        let layout = FileLayout { occur_time: Layout::Integer, rssi: Layout::Integer };
        let f = file("date=2026-03-02/hour=10/a.parquet");
        let expected = parse_frame(&df, "t", &f, layout, &mut ctx(&shops)).unwrap();
        for compression in
            [ParquetCompression::Snappy, ParquetCompression::Uncompressed, ParquetCompression::Zstd(None)]
        {
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf)
                .with_compression(compression)
                .with_row_group_size(Some(700))
                .finish(&mut df.clone())
                .unwrap();
            let bytes = Bytes::from(buf);
            // MACs and APs by dictionary; the shops, written plain, by Polars; zstd all by Polars.
            let read = dictionary_texts(&bytes).map(|t| t.map(|c| c.is_some()));
            let expect = (!matches!(compression, ParquetCompression::Zstd(_))).then_some([true, true, false]);
            assert_eq!(read, expect, "{compression:?}");
            let got = parse(bytes, "t", &f, layout, &mut ctx(&shops)).unwrap();
            assert_eq!(got.quality, expected.quality, "{compression:?}");
            let (e, g) = (&expected.events, &got.events);
            assert_eq!((&g.second, &g.mac, &g.ap, &g.rssi), (&e.second, &e.mac, &e.ap, &e.rssi));
            let shop = |ev: &Events| ev.shop.iter().map(|&s| ev.shop_names[s as usize].clone()).collect::<Vec<_>>();
            assert_eq!(shop(g), shop(e));
        }
        // The rows exercise what they should.
        let q = &expected.quality;
        assert!(q.rows_accepted > 1000 && q.unknown_shop_rows > 0, "{q:?}");
        for r in
            [reason::TIME_MISSING, reason::MAC_MISSING, reason::MAC_INVALID, reason::AP_MISSING, reason::AP_INVALID]
        {
            assert!(q.rejected[r] > 0, "{} {q:?}", REASONS[r]);
        }
        assert!(q.rejected[reason::SHOP_MISSING] > 0 && q.rejected[reason::RSSI_OUT_OF_RANGE] > 0, "{q:?}");
    }

    #[test]
    fn reason_indices_name_their_reasons() {
        use reason::*;
        let named = [
            (TIME_MISSING, "occur_time_missing"),
            (TIME_INVALID, "occur_time_invalid"),
            (TIME_OUT_OF_RANGE, "occur_time_out_of_range"),
            (MAC_MISSING, "mac_missing"),
            (MAC_INVALID, "mac_invalid"),
            (AP_MISSING, "ap_mac_missing"),
            (AP_INVALID, "ap_mac_invalid"),
            (SHOP_MISSING, "shop_code_missing"),
            (RSSI_MISSING, "rssi_missing"),
            (RSSI_INVALID, "rssi_invalid"),
            (RSSI_OUT_OF_RANGE, "rssi_out_of_range"),
        ];
        assert_eq!(named.len(), REASONS.len());
        for (i, name) in named {
            assert_eq!(REASONS[i], name);
        }
    }

    /// Epoch seconds written in finer units, as collectors get it wrong: the row is rejected as
    /// out of range (no panic, no partition in the year 58,000), and so are the extremes.
    #[test]
    fn times_in_the_wrong_unit_are_out_of_range() {
        let shops: HashSet<String> = ["S1".to_string()].into();
        let secs = 1_772_445_600i64; // 2026-03-02T10:00:00Z
        let times = [
            Some(secs),
            Some(secs * 1_000),
            Some(secs * 1_000_000),
            Some(secs * 1_000_000_000),
            Some(i64::MAX),
            Some(i64::MIN),
            Some(-1),
            Some(946_684_799), // one second before 2000-01-01
            Some(946_684_800),
            None,
        ];
        let n = times.len();
        let df = df!(
            "occur_time" => times,
            "user_device_mac" => vec!["aabbccddeeff"; n],
            "ap_mac" => vec!["00:1a:00:00:00:01"; n],
            "shop_code" => vec!["S1"; n],
            "rssi" => vec![-50i32; n],
        )
        .unwrap();
        let layout = FileLayout { occur_time: Layout::Integer, rssi: Layout::Integer };
        let p = parse_frame(&df, "t", &file("date=2026-03-02/hour=10/a.parquet"), layout, &mut ctx(&shops)).unwrap();
        assert_eq!(p.quality.rejected[reason::TIME_OUT_OF_RANGE], 7);
        assert_eq!(p.quality.rejected[reason::TIME_MISSING], 1);
        assert_eq!(p.quality.rows_accepted, 2);
        let secs_out = p.events.second.clone();
        assert_eq!(secs_out, [secs, 946_684_800]);
        // Text and unsigned forms reach the same check.
        let big = df!(
            "occur_time" => [u64::MAX, secs as u64],
            "user_device_mac" => ["aabbccddeeff"; 2],
            "ap_mac" => ["00:1a:00:00:00:01"; 2],
            "shop_code" => ["S1"; 2],
            "rssi" => [u64::MAX, 0],
        )
        .unwrap();
        let p = parse_frame(&big, "t", &file("a.parquet"), layout, &mut ctx(&shops)).unwrap();
        assert_eq!(p.quality.rejected[reason::TIME_OUT_OF_RANGE], 1);
        assert_eq!(p.quality.rows_accepted, 1);
        let text = df!(
            "occur_time" => ["1772445600000000000", "99999999999999999999", "1772445600"],
            "user_device_mac" => ["aabbccddeeff"; 3],
            "ap_mac" => ["00:1a:00:00:00:01"; 3],
            "shop_code" => ["S1"; 3],
            "rssi" => ["-50"; 3],
        )
        .unwrap();
        let layout = FileLayout { occur_time: Layout::Text, rssi: Layout::Text };
        let p = parse_frame(&text, "t", &file("a.parquet"), layout, &mut ctx(&shops)).unwrap();
        assert_eq!(p.quality.rejected[reason::TIME_OUT_OF_RANGE], 1);
        assert_eq!(p.quality.rejected[reason::TIME_INVALID], 1, "beyond i64 does not parse");
        assert_eq!(p.quality.rows_accepted, 1);
    }

    #[test]
    fn footer_checks_name_the_column() {
        use arrow::datatypes::{Field, Schema};
        let ok = Schema::new(vec![
            Field::new("occur_time", ArrowType::Utf8, true),
            Field::new("user_device_mac", ArrowType::Utf8, true),
            Field::new("ap_mac", ArrowType::Utf8View, true),
            Field::new("shop_code", ArrowType::Utf8, true),
            Field::new("rssi", ArrowType::Int16, true),
            Field::new("extra", ArrowType::Float64, true),
        ]);
        let l = layout_of("f", &ok).unwrap();
        assert_eq!((l.occur_time, l.rssi), (Layout::Text, Layout::Integer));
        let missing = Schema::new(ok.fields().iter().filter(|f| f.name() != "ap_mac").cloned().collect::<Vec<_>>());
        let err = layout_of("f.parquet", &missing).unwrap_err().to_string();
        assert!(err.contains("f.parquet") && err.contains("'ap_mac'"), "{err}");
        let float_rssi = Schema::new(
            ok.fields()
                .iter()
                .map(|f| {
                    if f.name() == "rssi" {
                        std::sync::Arc::new(Field::new("rssi", ArrowType::Float64, true))
                    } else {
                        f.clone()
                    }
                })
                .collect::<Vec<_>>(),
        );
        let err = layout_of("f.parquet", &float_rssi).unwrap_err().to_string();
        assert!(err.contains("'rssi'") && err.contains("Float64"), "{err}");
    }

    #[test]
    fn epoch_text_forms() {
        assert_eq!(parse_epoch_text("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_epoch_text("1700000000.999"), Some(1_700_000_000));
        assert_eq!(parse_epoch_text("-1.5"), Some(-2));
        assert_eq!(parse_epoch_text("17e8"), None);
        assert_eq!(parse_epoch_text("1700000000."), None);
        assert_eq!(parse_epoch_text("abc"), None);
    }
}
