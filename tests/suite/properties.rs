//! Property test of ingest: a probe file with any of the eight columns present or not, each of
//! any physical type, holding any values → footfall never panics. Either the footer check
//! refuses the file with an error naming it and the column, or every row is accepted or
//! rejected with one reason, and the counts add up.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{Field, Int32Type, Schema, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use footfall::pipeline::ingest::{self, IngestCtx, ProbeFile};
use footfall::store::Location;
use footfall::timeutil::LocalClock;
use proptest::prelude::*;

const COLUMNS: [&str; 8] = ["id", "shop_code", "ap_ip", "occur_time", "user_device_mac", "rssi", "ap_mac", "pt"];

/// A physical type a collector might write.
#[derive(Debug, Clone, Copy)]
enum Ty {
    I8,
    I16,
    I32,
    I64,
    U64,
    F64,
    Bool,
    Utf8,
    LargeUtf8,
    Dict,
    Binary,
    Date32,
    Ts(TimeUnit),
}

fn ty() -> impl Strategy<Value = Ty> {
    prop_oneof![
        Just(Ty::I8),
        Just(Ty::I16),
        Just(Ty::I32),
        Just(Ty::I64),
        Just(Ty::U64),
        Just(Ty::F64),
        Just(Ty::Bool),
        Just(Ty::Utf8),
        Just(Ty::LargeUtf8),
        Just(Ty::Dict),
        Just(Ty::Binary),
        Just(Ty::Date32),
        Just(Ty::Ts(TimeUnit::Second)),
        Just(Ty::Ts(TimeUnit::Millisecond)),
        Just(Ty::Ts(TimeUnit::Microsecond)),
        Just(Ty::Ts(TimeUnit::Nanosecond)),
    ]
}

/// A value before it is given its column's type: numbers and the texts collectors write.
#[derive(Debug, Clone)]
enum Cell {
    Int(i64),
    Text(String),
}

/// Any value at all: numbers of every size, and texts collectors write or garble.
fn any_cell() -> BoxedStrategy<Option<Cell>> {
    let int = prop_oneof![
        any::<i64>(),
        -130i64..=5,
        946_684_700i64..=1_900_000_000,
        Just(i64::MAX),
        Just(i64::MIN),
        (1_700_000_000i64..=1_800_000_000).prop_map(|s| s * 1000),
        (1_700_000_000i64..=1_800_000_000).prop_map(|s| s * 1_000_000_000),
    ];
    let text = prop_oneof![
        "[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}",
        "[0-9a-f]{12}",
        "[0-9a-f:]{0,20}",
        "-?[0-9]{1,22}(\\.[0-9]{0,4})?",
        " ?-?1[0-9]{2} ?",
        "S[0-9]{1,3}",
        "\\PC{0,12}",
        Just(String::new()),
    ];
    prop_oneof![
        1 => Just(None),
        3 => int.prop_map(|v| Some(Cell::Int(v))),
        3 => text.prop_map(|t| Some(Cell::Text(t))),
    ]
    .boxed()
}

/// A value as the column usually holds it (so that many rows get past the earlier checks),
/// or any value.
fn cell(column: &str) -> BoxedStrategy<Option<Cell>> {
    let usual: BoxedStrategy<Cell> = match column {
        "occur_time" => prop_oneof![
            (946_684_800i64..=1_900_000_000).prop_map(Cell::Int),
            (946_684_800i64..=1_900_000_000).prop_map(|t| Cell::Text(t.to_string())),
        ]
        .boxed(),
        "user_device_mac" | "ap_mac" => "[0-9a-f]{2}(:[0-9a-f]{2}){5}".prop_map(Cell::Text).boxed(),
        "shop_code" => "S[12]".prop_map(Cell::Text).boxed(),
        "rssi" => (-125i64..=3).prop_map(Cell::Int).boxed(),
        _ => "\\PC{0,8}".prop_map(Cell::Text).boxed(),
    };
    prop_oneof![3 => usual.prop_map(Some), 1 => any_cell()].boxed()
}

/// A physical type footfall accepts for the column (for other columns: text).
fn accepted_ty(column: &str) -> BoxedStrategy<Ty> {
    let ints = || prop_oneof![Just(Ty::I8), Just(Ty::I16), Just(Ty::I32), Just(Ty::I64), Just(Ty::U64)];
    let texts = || prop_oneof![Just(Ty::Utf8), Just(Ty::LargeUtf8), Just(Ty::Dict)];
    match column {
        "occur_time" => prop_oneof![
            ints(),
            texts(),
            Just(Ty::Ts(TimeUnit::Second)),
            Just(Ty::Ts(TimeUnit::Millisecond)),
            Just(Ty::Ts(TimeUnit::Microsecond)),
            Just(Ty::Ts(TimeUnit::Nanosecond)),
        ]
        .boxed(),
        "rssi" => prop_oneof![ints(), texts()].boxed(),
        _ => texts().boxed(),
    }
}

fn as_int(c: &Cell) -> Option<i64> {
    match c {
        Cell::Int(v) => Some(*v),
        Cell::Text(t) => t.trim().parse().ok(),
    }
}

fn as_text(c: &Cell) -> String {
    match c {
        Cell::Int(v) => v.to_string(),
        Cell::Text(t) => t.clone(),
    }
}

fn array(ty: Ty, cells: &[Option<Cell>]) -> ArrayRef {
    let ints = || cells.iter().map(|c| c.as_ref().and_then(as_int));
    let texts = || cells.iter().map(|c| c.as_ref().map(as_text));
    match ty {
        Ty::I8 => Arc::new(ints().map(|v| v.map(|v| v as i8)).collect::<Int8Array>()),
        Ty::I16 => Arc::new(ints().map(|v| v.map(|v| v as i16)).collect::<Int16Array>()),
        Ty::I32 => Arc::new(ints().map(|v| v.map(|v| v as i32)).collect::<Int32Array>()),
        Ty::I64 => Arc::new(ints().collect::<Int64Array>()),
        Ty::U64 => Arc::new(ints().map(|v| v.map(|v| v as u64)).collect::<UInt64Array>()),
        Ty::F64 => Arc::new(ints().map(|v| v.map(|v| v as f64)).collect::<Float64Array>()),
        Ty::Bool => Arc::new(ints().map(|v| v.map(|v| v % 2 == 0)).collect::<BooleanArray>()),
        Ty::Utf8 => Arc::new(texts().collect::<StringArray>()),
        Ty::LargeUtf8 => Arc::new(texts().collect::<LargeStringArray>()),
        Ty::Dict => {
            let owned: Vec<Option<String>> = texts().collect();
            Arc::new(owned.iter().map(Option::as_deref).collect::<DictionaryArray<Int32Type>>())
        }
        Ty::Binary => Arc::new(texts().map(|t| t.map(String::into_bytes)).collect::<BinaryArray>()),
        Ty::Date32 => Arc::new(ints().map(|v| v.map(|v| v as i32)).collect::<Date32Array>()),
        Ty::Ts(TimeUnit::Second) => Arc::new(ints().collect::<TimestampSecondArray>()),
        Ty::Ts(TimeUnit::Millisecond) => Arc::new(ints().collect::<TimestampMillisecondArray>()),
        Ty::Ts(TimeUnit::Microsecond) => Arc::new(ints().collect::<TimestampMicrosecondArray>()),
        Ty::Ts(TimeUnit::Nanosecond) => Arc::new(ints().collect::<TimestampNanosecondArray>()),
    }
}

/// One column of a generated file: present or not, its type, its values.
#[derive(Debug, Clone)]
struct Col {
    present: bool,
    ty: Ty,
    cells: Vec<Option<Cell>>,
}

/// A file of `0..24` rows: each column present or not, mostly of an accepted type.
fn file() -> impl Strategy<Value = Vec<Col>> {
    (0usize..24).prop_flat_map(|rows| {
        COLUMNS
            .iter()
            .map(|c| {
                let ty = prop_oneof![6 => accepted_ty(c), 1 => ty()];
                (prop::bool::weighted(0.95), ty, prop::collection::vec(cell(c), rows))
                    .prop_map(|(present, ty, cells)| Col { present, ty, cells })
                    .boxed()
            })
            .collect::<Vec<_>>()
    })
}

fn parquet_bytes(cols: &[Col], rows: usize) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (name, c) in COLUMNS.iter().zip(cols).filter(|(_, c)| c.present) {
        let a = array(c.ty, &c.cells);
        fields.push(Field::new(*name, a.data_type().clone(), true));
        arrays.push(a);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = if arrays.is_empty() {
        RecordBatch::try_new_with_options(schema.clone(), vec![], &RecordBatchOptions::new().with_row_count(Some(rows)))
    } else {
        RecordBatch::try_new(schema.clone(), arrays)
    }
    .unwrap();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    buf
}

const ACCEPTED_TIME: std::ops::RangeInclusive<i64> = 946_684_800..=1_900_000_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_probe_file_is_accepted_or_rejected_with_a_reason(cols in file()) {
        let rows = cols[0].cells.len();
        let store = Location::memory();
        let rel = "date=2026-03-02/hour=10/probe.parquet";
        let bytes = bytes::Bytes::from(parquet_bytes(&cols, rows));
        store.put(rel, bytes.clone()).unwrap();
        let entry = store.list().unwrap().into_iter().next().unwrap();
        let f = ProbeFile::new(entry);
        let layout = match ingest::inspect(&store, &f) {
            Ok(l) => l,
            Err(e) => {
                // Refused as a whole: the message names the file and a required column.
                let msg = format!("{e:#}");
                prop_assert!(msg.contains("probe.parquet"), "{msg}");
                prop_assert!(
                    ingest::REQUIRED.iter().any(|c| msg.contains(&format!("'{c}'"))),
                    "{msg}"
                );
                return Ok(());
            }
        };
        let shops: HashSet<String> = ["S1".to_string()].into();
        let mut ctx = IngestCtx {
            clock: LocalClock::new(chrono_tz::Europe::Berlin),
            valid_times: (*ACCEPTED_TIME.start(), *ACCEPTED_TIME.end()),
            known_shops: &shops,
            known_aps: None,
            exclude_randomized: false,
            key: None,
        };
        let p = ingest::parse(bytes, rel, &f, layout, &mut ctx).unwrap();
        let q = &p.quality;
        prop_assert_eq!(q.rows_read, rows as i64);
        prop_assert_eq!(q.rows_accepted + q.rejected.iter().sum::<i64>(), rows as i64);
        prop_assert_eq!(p.events.len() as i64, q.rows_accepted);
        prop_assert!(p.events.second.iter().all(|s| ACCEPTED_TIME.contains(s)));
        prop_assert!(p.events.rssi.iter().all(|r| (-120..=0).contains(r)));
    }
}
