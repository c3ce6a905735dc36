//! The published layout, read and written: one object per (table, date) —
//! `<out>/<table>/date=YYYY-MM-DD/part-0.parquet` — or per snapshot table
//! (`<out>/<table>/<table>.parquet`), each written with a single PUT, so readers see the old
//! partition or the new one, never a mix. Reads prune by partition: only the `date=` objects
//! inside the requested range are fetched (show, diff, demo summary, tests).
//!
//! Hive convention: a partition column lives in the path only. A date-partitioned file holds
//! every column but `date` (Spark, pyarrow and Trino refuse or fail to merge a file column
//! that duplicates a partition key); readers here put `date` back from the path.

use std::io::Cursor;

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::NaiveDate;
use polars::prelude::*;

use crate::schema::{IdText, Pseudonyms, TableSchema};
use crate::store::Location;

/// Published tables: zstd level 1, half the encode time of the default level 3 for files ~8 %
/// larger (measured on the 88 k-row `customers` snapshot that every update rewrites).
fn compression() -> ParquetCompression {
    let level = polars::polars_utils::compression::ZstdLevel::try_new(1).expect("1 is a zstd level");
    ParquetCompression::Zstd(Some(level))
}

fn writer_with(buf: &mut Vec<u8>, compression: ParquetCompression) -> ParquetWriter<&mut Vec<u8>> {
    ParquetWriter::new(buf)
        .with_compression(compression)
        .with_statistics(StatisticsOptions::default())
        .with_row_group_size(Some(ROW_GROUP))
}

/// Rows per Parquet row group (Polars' default), and per slice of [`encode_in_slices`].
const ROW_GROUP: usize = 512 * 512;

/// Parquet bytes of a frame (zstd; deterministic for identical input).
pub fn parquet_bytes(df: &mut DataFrame) -> Result<Bytes> {
    parquet_bytes_with(df, compression())
}

fn parquet_bytes_with(df: &mut DataFrame, compression: ParquetCompression) -> Result<Bytes> {
    let mut buf = Vec::new();
    writer_with(&mut buf, compression).finish(df)?;
    Ok(Bytes::from(buf))
}

/// Parquet bytes of `convert(df)`, converted and encoded a row group at a time, a row group
/// per core at once: a day's largest table (`customer_positions`, millions of rows) is never
/// held whole in its published form (zoned timestamps) beside its internal one, and its
/// encoding and compression are not left to one core (at 20 M records it was 79 % of a day's
/// writing, on one worker while the other sat idle). Each row group is encoded and compressed
/// into owned pages with the page writer Polars' own `write_batch` uses, then appended in
/// order: the same bytes as writing the slices one after another.
///
/// `convert` leaves the `ids` columns (published strings held as `u64`, see
/// [`TableSchema::id_columns`]) as ids; each row group writes them as a Parquet dictionary of
/// its distinct ids' texts, rendered once per id. Polars' writer, given the rendered strings,
/// would hash every row's 17-byte text twice (a cardinality estimate, then the dictionary);
/// here a row costs one `u64` lookup and the pages are the same. Text columns get the same
/// dictionary from one lookup per distinct view, and wide-ranging `i64` columns such as
/// timestamps from one lookup per run of equal values ([`dictionary`]).
pub fn encode_in_slices(
    df: &DataFrame,
    ids: &[(PlSmallStr, IdText)],
    convert: impl Fn(DataFrame) -> Result<DataFrame> + Sync,
) -> Result<Bytes> {
    encode(df, ids, convert, compression())
}

fn encode(
    df: &DataFrame,
    ids: &[(PlSmallStr, IdText)],
    convert: impl Fn(DataFrame) -> Result<DataFrame> + Sync,
    compression: ParquetCompression,
) -> Result<Bytes> {
    use polars_arrow::datatypes::ArrowDataType;
    use polars_parquet::write::{
        array_to_columns, compress, get_dtype_encoding, to_parquet_schema, Encoding, Version, WriteOptions,
    };
    let rendered = |mut part: DataFrame| -> Result<DataFrame> {
        for (name, how) in ids {
            let s = how.render(part.column(name)?.as_materialized_series())?;
            part.replace(name, s.into_column())?;
        }
        Ok(part)
    };
    if df.height() == 0 {
        return parquet_bytes_with(&mut rendered(convert(df.clone())?)?, compression);
    }
    // The published schema, from converting one row.
    let schema = rendered(convert(df.slice(0, 1))?)?.schema().clone();
    let arrow = schema.to_arrow(CompatLevel::newest());
    let fields = to_parquet_schema(&arrow)?.fields().to_vec();
    // Polars' writer tries a dictionary for floats too: it estimates their cardinality (a
    // hash of every row) and then fails to build one (it packs no float dictionaries) and
    // writes them plain. Floats are asked for plain, unless [`dictionary`] built one.
    let dictionary_encoding = vec![Encoding::RleDictionary];
    let encodings: Vec<_> = arrow
        .iter_values()
        .map(|f| match f.dtype {
            ArrowDataType::Float32 | ArrowDataType::Float64 => vec![Encoding::Plain],
            _ => get_dtype_encoding(&f.dtype),
        })
        .collect();
    let id_text: Vec<Option<&IdText>> =
        schema.iter_names().map(|n| ids.iter().find(|(c, _)| c == n).map(|(_, how)| how)).collect();
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: compression.into(),
        version: Version::V1,
        data_page_size: None,
    };
    // One slice → its row groups (one per chunk after the rechunk), as owned compressed pages.
    let encode = |offset: usize| -> Result<Vec<(u64, Vec<Vec<polars_parquet::write::CompressedPage>>)>> {
        let mut part = convert(df.slice(offset as i64, ROW_GROUP))?;
        part.rechunk_mut();
        let mut groups = Vec::new();
        for batch in part.iter_chunks(CompatLevel::newest(), false) {
            let mut columns = Vec::with_capacity(fields.len());
            for (((array, field), enc), how) in batch.columns().iter().zip(&fields).zip(&encodings).zip(&id_text) {
                let array = match how {
                    Some(how) => id_dictionary(array.as_ref(), how)?,
                    None => dictionary(array),
                };
                let enc = match array.dtype() {
                    ArrowDataType::Dictionary(..) => &dictionary_encoding,
                    _ => enc,
                };
                for pages in array_to_columns(&array, field.clone(), options, enc)? {
                    let pages = pages
                        .map(|p| Ok(compress(p?, Vec::new(), options.compression).map_err(PolarsError::from)?))
                        .collect::<Result<Vec<_>>>()?;
                    columns.push(pages);
                }
            }
            groups.push((batch.len() as u64, columns));
        }
        Ok(groups)
    };
    let mut buf = Vec::new();
    let mut w = writer_with(&mut buf, compression).batched(&schema)?;
    let offsets: Vec<usize> = (0..df.height()).step_by(ROW_GROUP).collect();
    // Every row group on the same workers, none waiting for a slower one beside it; the
    // compressed pages they hold are what the file holds (a 6.4 M-row table: 42 MB).
    let encoded = match &offsets[..] {
        [one] => vec![encode(*one)?],
        _ => crate::par::map(&offsets, |&offset| encode(offset))?,
    };
    for groups in encoded {
        for (rows, columns) in groups {
            w.write_row_group(rows, &columns)?;
        }
    }
    w.finish()?;
    drop(w);
    Ok(Bytes::from(buf))
}

/// A column as the array Polars' writer would encode it, where Polars would first estimate its
/// cardinality and then hash every row: a dictionary of its distinct values in order of first
/// appearance, or, when more than three rows in four are distinct, the column itself (plain).
/// Text looks each distinct view up once ([`crate::pipeline::ingest::per_distinct`]): a few
/// shop codes over millions of rows cost a few lookups. `i64` and `u64` columns whose range is
/// too wide for Polars' own bitmap dictionary (timestamps in microseconds, MACs) look a value up
/// only where it differs from the row before: a time-ordered column costs a lookup per distinct
/// second. `f64` columns get the same dictionary where Polars' writer would write them plain
/// ([`float_dictionary`]). Any other array is returned as it is (Polars' writer decides).
fn dictionary(array: &ArrayRef) -> ArrayRef {
    use polars_arrow::array::{PrimitiveArray, Utf8ViewArray};
    // Polars' min-max dictionary takes ranges up to u16::MAX (keys in value order).
    if let Some(ints) = array.as_any().downcast_ref::<PrimitiveArray<i64>>() {
        let wide = |lo: i64, hi: i64| hi.checked_sub(lo).is_some_and(|d| d > u16::MAX as i64);
        return int_dictionary(ints, wide).unwrap_or_else(|| array.clone());
    }
    if let Some(ints) = array.as_any().downcast_ref::<PrimitiveArray<u64>>() {
        return int_dictionary(ints, |lo, hi| hi - lo > u16::MAX as u64).unwrap_or_else(|| array.clone());
    }
    if let Some(floats) = array.as_any().downcast_ref::<PrimitiveArray<f64>>() {
        return float_dictionary(floats).unwrap_or_else(|| array.clone());
    }
    let Some(texts) = array.as_any().downcast_ref::<Utf8ViewArray>() else {
        return array.clone();
    };
    let ca = StringChunked::with_chunk(PlSmallStr::EMPTY, texts.clone());
    let mut index: PlHashMap<&str, u32> = PlHashMap::new();
    let mut order: Vec<&str> = Vec::new();
    let keys = crate::pipeline::ingest::per_distinct(&ca, |v| match v {
        None => 0,
        Some(s) => *index.entry(s).or_insert_with(|| {
            order.push(s);
            (order.len() - 1) as u32
        }),
    });
    if plain_is_better(order.len(), texts.len()) {
        return array.clone();
    }
    let values = Utf8ViewArray::from_slice_values(&order).boxed();
    keyed(keys, polars_arrow::array::Array::validity(texts), values).unwrap_or_else(|_| array.clone())
}

/// Polars' writer's rule: a column with more than three rows in four distinct is written plain.
fn plain_is_better(distinct: usize, rows: usize) -> bool {
    rows > 128 && distinct as f64 / rows as f64 > 0.75
}

/// The `u32`-keyed dictionary array of `values` (keys of null rows are ignored).
fn keyed(keys: Vec<u32>, validity: Option<&polars_arrow::bitmap::Bitmap>, values: ArrayRef) -> Result<ArrayRef> {
    use polars_arrow::array::{DictionaryArray, PrimitiveArray};
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity.cloned());
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
    Ok(DictionaryArray::try_new(dtype, keys, values)?.boxed())
}

/// See [`dictionary`]: `None` where Polars' writer takes another path (a range its bitmap
/// dictionary covers — `wide(min, max)` false —, or all nulls).
fn int_dictionary<T>(ints: &polars_arrow::array::PrimitiveArray<T>, wide: impl Fn(T, T) -> bool) -> Option<ArrayRef>
where
    T: polars_arrow::types::NativeType + std::hash::Hash + Ord,
{
    use polars_arrow::array::PrimitiveArray;
    let valid = |i: usize| ints.validity().is_none_or(|v| v.get_bit(i));
    let values = ints.values();
    let (lo, hi) = (0..values.len()).filter(|&i| valid(i)).map(|i| values[i]).fold(None, |m, v| match m {
        None => Some((v, v)),
        Some((lo, hi)) => Some((v.min(lo), v.max(hi))),
    })?;
    if !wide(lo, hi) {
        return None;
    }
    let (keys, order) = first_appearance(values.iter().copied(), valid);
    if plain_is_better(order.len(), values.len()) {
        return None;
    }
    keyed(keys, ints.validity(), PrimitiveArray::new(ints.dtype().clone(), order.into(), None).boxed()).ok()
}

/// A float column as a dictionary of its distinct values (compared bit for bit), where
/// Polars' writer writes every float plain: `customer_positions`' coordinates are a few
/// thousand places' over millions of rows, 4.8 MB a column a 6.4 M-row day written plain.
fn float_dictionary(floats: &polars_arrow::array::PrimitiveArray<f64>) -> Option<ArrayRef> {
    use polars_arrow::array::{Array, PrimitiveArray};
    let valid = |i: usize| floats.validity().is_none_or(|v| v.get_bit(i));
    if floats.null_count() == floats.len() {
        return None;
    }
    let (keys, order) = first_appearance(floats.values().iter().map(|f| f.to_bits()), valid);
    if plain_is_better(order.len(), floats.len() - floats.null_count()) {
        return None;
    }
    let values: Vec<f64> = order.into_iter().map(f64::from_bits).collect();
    keyed(keys, floats.validity(), PrimitiveArray::from_vec(values).boxed()).ok()
}

/// Each row's key into the distinct valid values in order of first appearance (null rows: 0),
/// and those values; a value is looked up only where it differs from the row before.
fn first_appearance<T: Copy + Eq + std::hash::Hash>(
    values: impl ExactSizeIterator<Item = T>,
    valid: impl Fn(usize) -> bool,
) -> (Vec<u32>, Vec<T>) {
    let mut index: PlHashMap<T, u32> = PlHashMap::new();
    let mut order: Vec<T> = Vec::new();
    let mut keys: Vec<u32> = Vec::with_capacity(values.len());
    let mut last: Option<(T, u32)> = None;
    for (i, v) in values.enumerate() {
        if !valid(i) {
            keys.push(0);
            continue;
        }
        let key = match last {
            Some((l, k)) if l == v => k,
            _ => *index.entry(v).or_insert_with(|| {
                order.push(v);
                (order.len() - 1) as u32
            }),
        };
        last = Some((v, key));
        keys.push(key);
    }
    (keys, order)
}

/// A `u64` id column as the array Polars' writer would encode its rendered texts from: a
/// dictionary of the distinct texts in order of first appearance, or, when more than three
/// rows in four are distinct (where Polars writes plain strings), the texts themselves.
fn id_dictionary(array: &dyn polars_arrow::array::Array, how: &IdText) -> Result<ArrayRef> {
    use polars_arrow::array::{MutableBinaryViewArray, PrimitiveArray};
    let ids = array
        .as_any()
        .downcast_ref::<PrimitiveArray<u64>>()
        .ok_or_else(|| anyhow::anyhow!("an id column is not u64"))?;
    let valid = |i: usize| ids.validity().is_none_or(|v| v.get_bit(i));
    let mut index: PlHashMap<u64, u32> = PlHashMap::new();
    let mut keys = Vec::with_capacity(ids.len());
    let mut order = Vec::new();
    for (i, &id) in ids.values().iter().enumerate() {
        if !valid(i) {
            keys.push(0);
            continue;
        }
        keys.push(*index.entry(id).or_insert_with(|| {
            order.push(id);
            (order.len() - 1) as u32
        }));
    }
    let mut buf = [0u8; 17];
    if plain_is_better(order.len(), ids.len()) {
        let mut texts = MutableBinaryViewArray::<str>::with_capacity(ids.len());
        for (i, &id) in ids.values().iter().enumerate() {
            match valid(i) {
                true => texts.push_value(how.text(id, &mut buf)?),
                false => texts.push_null(),
            }
        }
        return Ok(texts.freeze().boxed());
    }
    let mut values = MutableBinaryViewArray::<str>::with_capacity(order.len());
    for id in order {
        values.push_value(how.text(id, &mut buf)?);
    }
    keyed(keys, ids.validity(), values.freeze().boxed())
}

/// Parquet bytes of a state object (segments, summaries, statuses, the settled customers and
/// their context): only footfall reads them, each update reads the settled part and context
/// whole and a new day rewrites them, so LZ4 is used: on the 88 k-device settled part of a
/// month, 8.4–8.8 ms to write and 1.4–1.7 ms to read against zstd level 1's 10.7–15 ms and
/// 3.5–4.4 ms (best of 5, two runs), for 1.34 times the bytes. Published tables stay zstd
/// (read by others, kept for years).
/// Encoded like the large published tables ([`encode_in_slices`]): a segment's shop codes are
/// a few distinct strings over every row.
pub fn state_bytes(df: &mut DataFrame) -> Result<Bytes> {
    encode(df, &[], Ok, ParquetCompression::Lz4Raw)
}

/// Reads Parquet bytes.
pub fn read_parquet(bytes: Bytes) -> Result<DataFrame> {
    Ok(ParquetReader::new(Cursor::new(bytes)).finish()?)
}

/// The partition column of date-partitioned tables (in the path, not in the files).
pub const PARTITION: &str = "date";

/// Puts a partition's `date` (held by its path) back as a column, unless the file has one.
pub fn with_partition_date(mut df: DataFrame, date: NaiveDate) -> Result<DataFrame> {
    if df.column(PARTITION).is_err() {
        let days = Series::new(PARTITION.into(), vec![crate::timeutil::date_to_days(date); df.height()]);
        df.with_column(days.cast(&DataType::Date)?.into_column())?;
    }
    Ok(df)
}

/// Relative object name of a table partition.
pub fn partition_rel(table: &str, date: NaiveDate) -> String {
    format!("{table}/date={}/part-0.parquet", date.format("%Y-%m-%d"))
}

/// Relative object name of a snapshot table.
pub fn snapshot_rel(table: &str) -> String {
    format!("{table}/{table}.parquet")
}

/// Publishes one partition of a query's result in internal types (an empty frame publishes
/// an empty partition): sorted by the key and converted by the schema (see
/// [`TableSchema::conform_with`]); `date` is dropped, the path holds it. Returns the bytes
/// written.
pub fn publish_partition(
    out: &Location,
    schema: &TableSchema,
    date: NaiveDate,
    df: DataFrame,
    tz: &str,
    names: Option<&Pseudonyms>,
) -> Result<usize> {
    let rel = partition_rel(&schema.name, date);
    let df = schema.in_key_order(df)?;
    let ids = schema.id_columns(&df, names);
    let convert = |part: DataFrame| -> Result<DataFrame> {
        let part = schema.convert_keeping_ids(part, tz, names, true)?;
        Ok(if part.column(PARTITION).is_ok() { part.drop(PARTITION)? } else { part })
    };
    let bytes = encode_in_slices(&df, &ids, convert).with_context(|| format!("cannot encode {}", out.show(&rel)))?;
    let size = bytes.len();
    out.put(&rel, bytes)?;
    Ok(size)
}

/// Publishes a snapshot table.
pub fn publish_snapshot(out: &Location, schema: &TableSchema, mut df: DataFrame) -> Result<()> {
    let rel = snapshot_rel(&schema.name);
    let bytes = parquet_bytes(&mut df).with_context(|| format!("cannot encode {}", out.show(&rel)))?;
    out.put(&rel, bytes)
}

/// Dates that have a published partition of `table`.
pub fn published_dates(out: &Location, table: &str) -> Result<Vec<NaiveDate>> {
    let mut dates: Vec<NaiveDate> = out
        .list_under(table)?
        .iter()
        .filter_map(|e| e.rel.split('/').find_map(|s| s.strip_prefix("date=")))
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .collect();
    dates.sort();
    dates.dedup();
    Ok(dates)
}

/// A table's rows, optionally limited to dates in `[from, to]`; sorted by primary key.
/// A table with no published data yields an empty frame with the schema's columns.
pub fn read_table(
    out: &Location,
    schema: &TableSchema,
    tz: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<DataFrame> {
    if schema.is_view() {
        return read_view(out, schema, tz, from, to);
    }
    // (object, the date its path holds)
    // A snapshot is listed, not fetched, to learn whether it exists: its bytes are read once.
    let rels: Vec<(String, Option<NaiveDate>)> = if schema.is_snapshot() {
        let rel = snapshot_rel(&schema.name);
        out.list_under(&schema.name)?.into_iter().filter(|e| e.rel == rel).map(|e| (e.rel, None)).collect()
    } else {
        out.list_under(&schema.name)?
            .into_iter()
            .filter(|e| e.rel.ends_with(".parquet"))
            .filter_map(|e| {
                let d = e
                    .rel
                    .split('/')
                    .find_map(|s| s.strip_prefix("date="))
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())?;
                (from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)).then_some((e.rel, Some(d)))
            })
            .collect()
    };
    let frames: Vec<DataFrame> = crate::par::map(&rels, |(rel, date)| {
        let df = read_parquet(out.get(rel)?).with_context(|| format!("cannot read {}", out.show(rel)))?;
        match date {
            Some(d) => with_partition_date(df, *d),
            None => Ok(df),
        }
    })?;
    let mut df: Option<DataFrame> = None;
    for f in frames {
        let f = f.select(schema.columns.iter().map(|c| c.name.as_str()))?;
        match df.as_mut() {
            None => df = Some(f),
            Some(d) => {
                d.vstack_mut_owned(f)?;
            }
        }
    }
    let mut df = df.unwrap_or_else(|| schema.empty(tz));
    df.rechunk_mut();
    if schema.is_snapshot() && (from.is_some() || to.is_some()) && df.column("date").is_ok() {
        let lo = from.map(crate::timeutil::date_to_days).unwrap_or(i32::MIN);
        let hi = to.map(crate::timeutil::date_to_days).unwrap_or(i32::MAX);
        let d = col("date").cast(DataType::Int32);
        df = df.lazy().filter(d.clone().gt_eq(lit(lo)).and(d.lt_eq(lit(hi)))).collect()?;
    }
    Ok(df)
}

/// A view's rows: those of its first table, then of each next one the rows whose primary key
/// no earlier table has; sorted by primary key.
fn read_view(
    out: &Location,
    schema: &TableSchema,
    tz: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<DataFrame> {
    let key: Vec<Expr> = schema.primary_key.iter().map(|k| col(k.as_str())).collect();
    let mut merged: Option<LazyFrame> = None;
    for name in &schema.view_of {
        let part = read_table(out, crate::schema::get(name)?, tz, from, to)?.lazy();
        merged = Some(match merged {
            None => part,
            Some(m) => {
                let rest = part.join(m.clone(), key.clone(), key.clone(), JoinArgs::new(JoinType::Anti));
                concat([m, rest], UnionArgs::default())?
            }
        });
    }
    let Some(merged) = merged else { return Ok(schema.empty(tz)) };
    let keys: Vec<&str> = schema.primary_key.iter().map(String::as_str).collect();
    Ok(merged.sort(keys, SortMultipleOptions::default()).collect()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_encode_the_same_rows_as_the_whole() {
        use crate::mac::format_mac;
        let n = 2 * ROW_GROUP + 1234;
        // An id column of few distinct MACs with nulls (a dictionary), one of all-distinct MACs
        // (plain strings), and a rendered text column.
        let few: Vec<Option<u64>> =
            (0..n as u64).map(|i| (i % 7 != 3).then_some(0x0a00_0000_0000 + i % 1000)).collect();
        let df = df!(
            "id" => (0..n as u64).collect::<Vec<_>>(),
            "few" => few,
            "all" => (0..n as u64).map(|i| i * 0x1_0001).collect::<Vec<_>>(),
        )
        .unwrap();
        let ids = [("few".into(), IdText::Mac), ("all".into(), IdText::Mac)];
        // "text": all distinct (plain); "shop": a few codes with nulls (a text dictionary); "at":
        // microsecond timestamps in runs of ten rows with nulls (an i64 dictionary), "spread":
        // all-distinct wide i64s (plain), "narrow": i64s within Polars' bitmap range, "dev":
        // wide-ranging u64s of a few thousand values with nulls (a u64 dictionary, segments' MACs).
        let keep = |d: DataFrame| -> Result<DataFrame> {
            let ids = d.column("id")?.u64()?;
            let text: StringChunked = ids.iter().map(|v| v.map(|v| format!("#{v}"))).collect();
            let shop: StringChunked =
                ids.iter().map(|v| v.filter(|v| v % 5 != 0).map(|v| format!("S{:03}", v % 41))).collect();
            let at: Int64Chunked = ids
                .iter()
                .map(|v| v.filter(|v| v % 13 != 0).map(|v| 1_772_000_000_000_000 + (v / 10) as i64 * 1_000_000))
                .collect();
            let at = at.into_series().cast(&DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)))?;
            let spread: Int64Chunked = ids.iter().map(|v| v.map(|v| v as i64 * 1_000_003)).collect();
            let narrow: Int64Chunked = ids.iter().map(|v| v.map(|v| (v % 1000) as i64 - 500)).collect();
            let mut out = d.select(["few", "all"])?;
            out.insert_column(0, text.with_name("text".into()).into_column())?;
            out.with_column(shop.with_name("shop".into()).into_column())?;
            out.with_column(at.with_name("at".into()).into_column())?;
            out.with_column(spread.with_name("spread".into()).into_column())?;
            out.with_column(narrow.with_name("narrow".into()).into_column())?;
            let dev: UInt64Chunked = ids
                .iter()
                .map(|v| v.filter(|v| v % 11 != 0).map(|v| 0x0a00_0000_0000 + (v * 7919 % 3001) << 8))
                .collect();
            out.with_column(dev.with_name("dev".into()).into_column())?;
            // Floats: coordinates of a few places with nulls, and all-distinct ones.
            let xy: Float64Chunked =
                ids.iter().map(|v| v.filter(|v| v % 17 != 0).map(|v| (v % 9) as f64 * 2.5)).collect();
            let far: Float64Chunked = ids.iter().map(|v| v.map(|v| v as f64 / 7.0)).collect();
            out.with_column(xy.with_name("xy".into()).into_column())?;
            out.with_column(far.with_name("far".into()).into_column())?;
            Ok(out)
        };
        // The published frame, every row rendered independently of IdText.
        let render = |d: DataFrame| -> Result<DataFrame> {
            let mut out = keep(d)?;
            for c in ["few", "all"] {
                let s: StringChunked = out.column(c)?.u64()?.iter().map(|v| v.map(format_mac)).collect();
                out.replace(c, s.with_name(c.into()).into_column())?;
            }
            Ok(out)
        };
        let sliced = encode_in_slices(&df, &ids, keep).unwrap();
        let whole = parquet_bytes(&mut render(df.clone()).unwrap()).unwrap();
        // Polars' own batched writer, one rendered slice after another, writes the same bytes
        // but for "xy", a float column of few values: Polars writes every float plain, here
        // it is a dictionary. Compared without it.
        let without_xy = |d: DataFrame| -> Result<DataFrame> { Ok(keep(d)?.drop("xy")?) };
        let render_without_xy = |d: DataFrame| -> Result<DataFrame> { Ok(render(d)?.drop("xy")?) };
        let mut buf = Vec::new();
        let first = render_without_xy(df.slice(0, 1)).unwrap();
        let mut w = writer_with(&mut buf, compression()).batched(first.schema()).unwrap();
        for offset in (0..n).step_by(ROW_GROUP) {
            let mut part = render_without_xy(df.slice(offset as i64, ROW_GROUP)).unwrap();
            part.rechunk_mut();
            w.write_batch(&part).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        let polars_like = encode_in_slices(&df, &ids, without_xy).unwrap();
        assert!(polars_like[..] == buf[..], "row groups encoded in parallel differ from the batched writer's");
        assert_eq!(read_parquet(sliced.clone()).unwrap(), read_parquet(whole.clone()).unwrap());
        let meta = |b: Bytes| {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            SerializedFileReader::new(b).unwrap().metadata().clone()
        };
        let m = meta(sliced.clone());
        assert_eq!(m.num_row_groups(), 3, "a row group per slice");
        assert!(meta(whole).num_row_groups() >= 2);
        // "few", "shop", "at", "narrow", "dev" and "xy" are dictionary-encoded, "text", "all",
        // "spread" and "far" (all-distinct floats) not.
        let dict = |c: usize| m.row_group(0).column(c).dictionary_page_offset().is_some();
        let dicts: Vec<bool> = (0..10).map(dict).collect();
        assert_eq!(dicts, [false, true, false, true, true, false, true, true, true, false]);
        // The float dictionary's values and nulls read back.
        let back = read_parquet(sliced.clone()).unwrap();
        let got: Vec<Option<f64>> = back.column("xy").unwrap().f64().unwrap().iter().collect();
        let want: Vec<Option<f64>> = (0..n as u64).map(|v| (v % 17 != 0).then_some((v % 9) as f64 * 2.5)).collect();
        assert_eq!(got, want);
        // A small table: one row group, the same bytes as Polars' writer of the whole frame.
        let small = df.slice(10, 300);
        let bytes = encode_in_slices(&small, &ids, without_xy).unwrap();
        assert!(bytes[..] == parquet_bytes(&mut render_without_xy(small.clone()).unwrap()).unwrap()[..]);
        let bytes = encode_in_slices(&small, &ids, keep).unwrap();
        assert_eq!(read_parquet(bytes).unwrap(), render(small).unwrap());
        // State objects: the same rows back.
        let state = render(df.slice(5, 1000)).unwrap();
        assert_eq!(read_parquet(state_bytes(&mut state.clone()).unwrap()).unwrap(), state);
        let empty = state.clear();
        assert_eq!(read_parquet(state_bytes(&mut empty.clone()).unwrap()).unwrap(), empty);
    }
}
