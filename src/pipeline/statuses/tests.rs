//! The status rules and the incremental classifier on hand-made device-days.

use super::classify::{classify, Known};
use super::*;

/// Rows (device, day, mall dwell seconds, qualifying) → (days7, staff, loyalty) per row.
fn run(rows: &[(u64, i32, i64, bool)]) -> Vec<(i64, bool, Option<i32>)> {
    let s = Settings::default(); // staff: ≥ 6 h on ≥ 3 of the last 7 days
    let macs: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let days: Vec<i32> = rows.iter().map(|r| r.1).collect();
    let dwell: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let q: Vec<bool> = rows.iter().map(|r| r.3).collect();
    let c = classify(&macs, &days, &dwell, &q, &vec![None; rows.len()], &vec![false; rows.len()], &s);
    for (i, qualifies) in q.iter().enumerate() {
        assert_eq!(c.visitor[i], *qualifies && !c.staff[i], "visitor = qualifying and not staff");
        assert_eq!(c.loyalty[i].is_some(), c.visitor[i], "a class exactly for visitors");
    }
    (0..rows.len()).map(|i| (c.days7[i], c.staff[i], c.loyalty[i])).collect()
}

const H6: i64 = 6 * 3600;

#[test]
fn staff_needs_min_days_of_min_hours_in_the_last_seven() {
    let got = run(&[
        (1, 1, H6, false),     // exactly 6 h: counts
        (1, 2, H6, false),     // 2 days: one short of min_days
        (1, 3, H6, false),     // 3 days: staff
        (1, 4, 0, false),      // still 3 days in 4−6..4: staff without being there long
        (1, 9, H6 - 1, false), // one second short; window 3..9 holds day 3 only
        (1, 10, 0, false),     // window 4..10: nothing left
    ]);
    let days7: Vec<i64> = got.iter().map(|g| g.0).collect();
    let staff: Vec<bool> = got.iter().map(|g| g.1).collect();
    assert_eq!(days7, [1, 2, 3, 3, 1, 0]);
    assert_eq!(staff, [false, false, true, true, false, false]);
}

#[test]
fn loyalty_classes_precedence_and_block_boundaries() {
    let v = |mac, day| (mac, day, 0, true);
    let got = run(&[
        // Device 2.
        v(2, 1),  // first visitor-day ever
        v(2, 2),  // 2 of the last 7, one block → occasional
        v(2, 3),  // occasional
        v(2, 4),  // 4 of the last 7 → occasional
        v(2, 5),  // exactly 5 of the last 7 → daily
        v(2, 12), // day 5 is 7 back: block 1 → weekly
        v(2, 40), // day 12 is 28 back: outside the four blocks → occasional
        // Device 3: daily and weekly both hold on day 12 → daily wins.
        v(3, 1),
        v(3, 8), // day 1 is 7 back: not in the last 7, but block 1 → weekly
        v(3, 9),
        v(3, 10),
        v(3, 11),
        v(3, 12), // 8..12 = 5 of the last 7 → daily
        // Devices 4 and 5: 27 back is block 3, 28 back is outside.
        v(4, 1),
        v(4, 28),
        v(5, 1),
        v(5, 29),
    ]);
    let classes: Vec<Option<i32>> = got.iter().map(|g| g.2).collect();
    let (f, d, w, o) = (Some(FIRST_TIME), Some(DAILY), Some(WEEKLY), Some(OCCASIONAL));
    assert_eq!(classes, [f, o, o, o, d, w, o, f, w, w, w, w, d, f, w, f, o]);
}

#[test]
fn classifying_from_a_later_day_with_context_equals_classifying_every_day() {
    // Pseudo-random device-days (xorshift), sorted by (device, day) by construction.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut rows = Vec::new();
    for mac in 0..60u64 {
        for day in 0..90 {
            if rnd() % 3 == 0 {
                rows.push((mac, day, (rnd() % 9) as i64 * 3600, rnd() % 3 != 0));
            }
        }
    }
    let s = Settings::default();
    let col4 = |rows: &[(u64, i32, i64, bool)]| {
        (
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        )
    };
    let n = rows.len();
    let (m, d, w, q) = col4(&rows);
    let full = classify(&m, &d, &w, &q, &vec![None; n], &vec![false; n], &s);
    assert!(full.staff.iter().any(|v| *v) && full.loyalty.contains(&Some(WEEKLY)));
    for since in [1, 7, 27, 28, 29, 45, 89] {
        let idx: Vec<usize> = (0..n).filter(|&i| rows[i].1 >= since - 27).collect();
        let sub: Vec<_> = idx.iter().map(|&i| rows[i]).collect();
        let known: Vec<Option<Known>> = idx
            .iter()
            .map(|&i| {
                (rows[i].1 < since).then(|| Known {
                    days7: full.days7[i],
                    staff: full.staff[i],
                    visitor: full.visitor[i],
                    loyalty: full.loyalty[i],
                })
            })
            .collect();
        let earlier: Vec<bool> = idx
            .iter()
            .map(|&i| (0..n).any(|j| rows[j].0 == rows[i].0 && rows[j].1 < since - 27 && full.visitor[j]))
            .collect();
        let (m, d, w, q) = col4(&sub);
        let part = classify(&m, &d, &w, &q, &known, &earlier, &s);
        for (k, &i) in idx.iter().enumerate().filter(|(_, &i)| rows[i].1 >= since) {
            assert_eq!(
                (part.days7[k], part.staff[k], part.visitor[k], part.loyalty[k]),
                (full.days7[i], full.staff[i], full.visitor[i], full.loyalty[i]),
                "since {since}, row {:?}",
                rows[i]
            );
        }
    }
}

#[test]
fn merging_sorted_customers_equals_a_group_by_over_both() {
    // Two aggregates over disjoint days with overlapping devices, one side in hash order.
    let part = |macs: &[u64], day: i32| {
        let n = macs.len();
        let fv: Vec<Option<i32>> = macs.iter().map(|m| (m % 3 != 0).then_some(day + (*m % 2) as i32)).collect();
        df!(MAC => macs, "first_seen" => macs.iter().map(|m| (day as i64) * 86_400 + *m as i64).collect::<Vec<_>>(),
            "last_seen" => macs.iter().map(|m| (day as i64) * 86_400 + 50_000 - *m as i64).collect::<Vec<_>>(),
            "first_date" => vec![day; n], "last_date" => vec![day + 1; n],
            "days_seen" => macs.iter().map(|m| 1 + (*m % 4) as i64).collect::<Vec<_>>(), "first_visit" => fv)
        .unwrap()
    };
    let a = part(&[9, 2, 7, 4, 11, 1], 10);
    let b = part(&[1, 3, 4, 12, 20], 12);
    let got = merge_customers(&a, &b).unwrap();
    let want = concat([a.clone().lazy(), b.clone().lazy()], UnionArgs::default())
        .unwrap()
        .group_by([col(MAC)])
        .agg([
            col("first_seen").min(),
            col("last_seen").max(),
            col("first_date").min(),
            col("last_date").max(),
            col("days_seen").sum(),
            col("first_visit").min(),
        ])
        .sort([MAC], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_eq!(
        got.column(MAC).unwrap().u64().unwrap().into_no_null_iter().collect::<Vec<_>>(),
        [1, 2, 3, 4, 7, 9, 11, 12, 20]
    );
    assert!(got.equals_missing(&want), "{got}\n{want}");
    // customers_recent: the later part's devices only, each with the full merge's row.
    let recent = customers::overlay(&Aggregate::of(&a).unwrap(), &Aggregate::of(&b).unwrap()).frame().unwrap();
    let b_devices = Series::new("b".into(), [1u64, 3, 4, 12, 20]);
    let want_recent = want.lazy().filter(col(MAC).is_in(lit(b_devices).implode(false), false)).collect().unwrap();
    assert!(recent.equals_missing(&want_recent), "{recent}\n{want_recent}");
}

#[test]
fn a_kept_context_moved_to_a_later_boundary_equals_one_built_there() {
    // Status rows (device, day, mall dwell, visitor) over days 0..40.
    let s = Settings::default();
    let h6 = (s.staff_min_hours * 3600.0) as i64;
    let rows: Vec<(u64, i32, i64, bool)> = (0..40)
        .flat_map(|d| {
            (0..6u64)
                .filter(move |m| (d as u64 + m) % 3 != 0)
                .map(move |m| (m, d, (m as i64 % 3) * h6 / 2, (d + m as i32) % 2 == 0))
        })
        .collect();
    let frame = |keep: &dyn Fn(i32) -> bool| {
        let r: Vec<_> = rows.iter().filter(|r| keep(r.1)).collect();
        df!(MAC => r.iter().map(|r| r.0).collect::<Vec<_>>(), "day" => r.iter().map(|r| r.1).collect::<Vec<_>>(),
            "mall_dwell" => r.iter().map(|r| r.2).collect::<Vec<_>>(), "visitor" => r.iter().map(|r| r.3).collect::<Vec<_>>())
        .unwrap()
    };
    let built = |before: i32| {
        let mut bits = PlHashMap::new();
        Context::add(&mut bits, before, &frame(&|_| true), &s).unwrap();
        Context::from_bits(before, bits)
    };
    let (old, new) = (built(30), built(33));
    let mut bits = PlHashMap::new();
    old.shift_into(33, &mut bits);
    Context::add(&mut bits, 33, &frame(&|d| d >= 30), &s).unwrap();
    let moved = Context::from_bits(33, bits);
    assert_eq!((&moved.mac, &moved.long, &moved.visit), (&new.mac, &new.long, &new.visit));
    assert!(new.long.iter().any(|l| *l != 0) && new.visit.iter().any(|v| *v != 0));
    // Bit k is day 32 − k: device 1 on day 31 has dwell h6/2 (short) and is a visitor,
    // device 2 on day 32 has h6 and is one too; device 1 has no row on day 32.
    let (i, j) = (new.mac.binary_search(&1).unwrap(), new.mac.binary_search(&2).unwrap());
    assert_eq!((new.long[i] >> 1 & 1, new.visit[i] >> 1 & 1, new.long[i] & 1, new.visit[i] & 1), (0, 1, 0, 0));
    assert_eq!((new.long[j] & 1, new.visit[j] & 1), (1, 1));
    // The rows it stands for: exactly the long or visitor days from `lo` on.
    let macs = UInt64Chunked::from_vec("m".into(), vec![1, 2, 9]);
    let got = new.rows(&macs, 20, &s);
    let want = rows.iter().filter(|r| [1, 2].contains(&r.0) && (20..33).contains(&r.1) && (r.2 >= h6 || r.3)).count();
    assert_eq!(got.height(), want);
    let visitor = got.column("visitor").unwrap().bool().unwrap();
    let dwell = got.column("mall_dwell").unwrap().i64().unwrap();
    let (macs, days) = (got.column(MAC).unwrap().u64().unwrap(), got.column("day").unwrap().i32().unwrap());
    for i in 0..got.height() {
        let r = rows.iter().find(|r| Some(r.0) == macs.get(i) && Some(r.1) == days.get(i)).unwrap();
        assert_eq!((visitor.get(i), dwell.get(i).unwrap() >= h6), (Some(r.3), r.2 >= h6));
    }
}

#[test]
fn staff_days_are_not_visitor_days() {
    // Qualifying every day and 6 h a day: staff from day 3 on, so no visitor-day then.
    let got = run(&[(6, 1, H6, true), (6, 2, H6, true), (6, 3, H6, true), (6, 4, H6, true)]);
    assert_eq!(got, [(1, false, Some(FIRST_TIME)), (2, false, Some(OCCASIONAL)), (3, true, None), (4, true, None)]);
    // Staff on its first qualifying days: its first visitor-day comes later and is first_time.
    let got = run(&[(7, 1, H6, false), (7, 2, H6, false), (7, 3, H6, true), (7, 20, 60, true)]);
    assert_eq!(got[2], (3, true, None));
    assert_eq!(got[3], (0, false, Some(FIRST_TIME)));
}

#[test]
fn the_settled_aggregate_round_trips_through_its_bytes_and_refuses_damage() {
    let mut a = Aggregate::with_capacity(3);
    for (mac, fv) in [(3u64, 19_000), (7, NO_VISIT), (u64::MAX, -5)] {
        a.mac.push(mac);
        a.first_seen.push(mac as i64 ^ 0x55);
        a.last_seen.push(i64::MAX.wrapping_sub(mac as i64));
        a.first_date.push(-(mac as i32));
        a.last_date.push(mac as i32);
        a.days_seen.push(mac as i64 % 97);
        a.first_visit.push(fv);
    }
    let from_bytes = |b: &[u8]| Stored::parse(bytes::Bytes::copy_from_slice(b)).map(|s| s.decode());
    let bytes = a.to_bytes();
    let b = from_bytes(&bytes).unwrap();
    // Looked up in place: the same rows as the decoded aggregate, absent devices absent.
    let stored = Stored::parse(bytes.clone()).unwrap();
    for mac in [0, 3, 5, 7, 8, u64::MAX - 1, u64::MAX] {
        assert_eq!(stored.find(mac), a.find(mac), "{mac}");
        if let Some(i) = a.find(mac) {
            let (x, y) = (stored.row(i), a.row(i));
            assert_eq!(
                (x.first_seen, x.last_seen, x.first_date, x.last_date, x.days_seen, x.first_visit),
                (y.first_seen, y.last_seen, y.first_date, y.last_date, y.days_seen, y.first_visit)
            );
        }
    }
    assert_eq!(stored.macs().collect::<Vec<_>>(), a.mac);
    assert!(b.frame().unwrap().equals_missing(&a.frame().unwrap()));
    assert!(from_bytes(&Aggregate::with_capacity(0).to_bytes()).unwrap().mac.is_empty());
    // Truncated at every length, a foreign header, devices out of order: errors, no panic.
    for n in 0..bytes.len() {
        assert!(from_bytes(&bytes[..n]).is_err(), "{n} bytes");
    }
    let mut foreign = bytes.to_vec();
    foreign[7] = b'9';
    assert!(from_bytes(&foreign).is_err());
    let mut unsorted = bytes.to_vec();
    unsorted[16..24].copy_from_slice(&8u64.to_le_bytes()); // first mac 8 > second mac 7
    assert!(from_bytes(&unsorted).is_err());
    let mut huge = bytes.to_vec();
    huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(from_bytes(&huge).is_err());
}
