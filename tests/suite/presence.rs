//! The presence tables (docs/tables.md) on tiny hand-made inputs; every expected value is worked out by hand in
//! the comments. (Staff and loyalty windows are unit-tested in `metrics::presence`.)

use crate::frames::*;
use footfall::dims::Dims;
use polars::prelude::*;

/// A device's records at one shop/AP every `step` seconds from `from` to `to` inclusive.
fn stay(
    mac: &'static str,
    ap: &'static str,
    shop: &'static str,
    from: i64,
    to: i64,
    step: i64,
    rssi: i64,
) -> Vec<(i64, &'static str, &'static str, &'static str, i64)> {
    let mut v: Vec<_> =
        (0..).map(|i| from + i * step).take_while(|t| *t < to).map(|t| (t, mac, ap, shop, rssi)).collect();
    v.push((to, mac, ap, shop, rssi));
    v
}

#[test]
fn qualifying_edges_min_dwell_and_min_rssi() {
    let s = settings("UTC"); // min_rssi -65, min_dwell 5 min
    let t0 = ts("2026-03-02T10:00:00Z");
    let (a, b, c) = ("00:00:00:00:00:0a", "00:00:00:00:00:0b", "00:00:00:00:00:0c");
    let t = tables(
        &s,
        &dims(),
        &[
            // A: 300 s exactly, strongest -65 exactly → qualifies (shop and mall).
            (t0, a, AP1, "S1", -65),
            (t0 + 300, a, AP1, "S1", -70),
            // B: 299 s, one second short → passer-by.
            (t0, b, AP1, "S1", -50),
            (t0 + 299, b, AP1, "S1", -50),
            // C: long enough, strongest -66, one dBm short → passer-by.
            (t0, c, AP1, "S1", -66),
            (t0 + 400, c, AP1, "S1", -66),
        ],
    );
    // detected 3, visitors 1, passersby 2, capture 1/3, 1 visit of 300 s in [5, 20 min).
    let third = 1.0f64 / 3.0;
    assert_eq!(t["shop_daily_engagement"], [format!("2026-03-02,S1,Shop One,3,1,2,{third},1,300.0,300.0,0,1,0,0,0")]);
    // The same at mall level (each device is in one shop only), no staff, no randomised MAC.
    assert_eq!(t["mall_daily_engagement"], [format!("2026-03-02,3,1,2,{third},1,300.0,300.0,0,1,0,0,0,0,0.0")]);
    assert_eq!(t["mall_daily_loyalty"], ["2026-03-02,1,1,0,0,0,0"]);
    assert!(t["staff_devices_daily"].is_empty());
}

#[test]
fn dwell_bucket_boundaries_and_even_median() {
    let mut s = settings("UTC");
    s.min_dwell = 0;
    s.min_rssi = -120;
    let t0 = ts("2026-03-02T08:00:00Z");
    let macs = [
        "00:00:00:00:01:00",
        "00:00:00:00:01:01",
        "00:00:00:00:01:02",
        "00:00:00:00:01:03",
        "00:00:00:00:01:04",
        "00:00:00:00:01:05",
        "00:00:00:00:01:06",
        "00:00:00:00:01:07",
        "00:00:00:00:01:08",
        "00:00:00:00:01:09",
    ];
    let dwells = [0, 100, 299, 300, 1199, 1200, 3599, 3600, 21599, 21600];
    let mut recs = Vec::new();
    for (m, d) in macs.iter().zip(dwells) {
        recs.extend(stay(m, AP1, "S1", t0, t0 + d, 500, -60));
    }
    let t = tables(&s, &dims(), &recs);
    // Buckets: [0,5m) 0,100,299; [5,20m) 300,1199; [20,60m) 1200,3599; [1h,6h) 3600,21599; ≥6h 21600.
    // Median of 10: (1199 + 1200) / 2; mean 53496 / 10.
    assert_eq!(t["shop_daily_engagement"], ["2026-03-02,S1,Shop One,10,10,0,1.0,10,5349.6,1199.5,3,2,2,2,1"]);
}

#[test]
fn position_from_two_aps_and_from_place_info() {
    let mut s = settings("UTC");
    // Cell 0.905 separates the right centroid (0.909) from one counting AP1 twice (0.901).
    s.density_cell = 0.905;
    let mut d: Dims = dims();
    d.aps = df!("ap_mac" => [0x001a00000001u64, 0x001a00000002], "x" => [0.0, 10.0], "y" => [0.0, 2.0]).unwrap();
    d.places = df!("user_device_mac" => [0x0000000000ccu64], "x" => [12.0], "y" => [7.5]).unwrap();
    let t0 = ts("2026-03-02T10:07:00Z");
    let (a, b, p) = ("00:00:00:00:00:aa", "00:00:00:00:00:bb", "00:00:00:00:00:cc");
    let t = tables(
        &s,
        &d,
        &[
            // A in one second: AP1 -50 (and -70 under another shop: AP1 counts once, at -50),
            // AP2 -60, AP3 unknown to ap_info (ignored). Weights 1e-5 and 1e-6:
            // x = 10e-6 / 11e-6 = 0.90909 → 0.909 → cell 1; y = 2e-6 / 11e-6 = 0.1818 → 0.
            (t0, a, AP1, "S1", -50),
            (t0, a, AP1, "S2", -70),
            (t0, a, AP2, "S2", -60),
            (t0, a, AP3, "S2", -40),
            // B heard by AP2 alone sits on it: (10, 2) → cells (11, 2); at 10:15 it is in the next slot.
            (t0, b, AP2, "S2", -80),
            (t0 + 480, b, AP2, "S2", -80),
            // P is in place_info: (12, 7.5) → cells (13, 8), whatever AP heard it.
            (t0, p, AP1, "S1", -50),
        ],
    );
    let s10 = ts("2026-03-02T10:00:00Z");
    let s15 = ts("2026-03-02T10:15:00Z");
    assert_eq!(
        t["density_grid"],
        [
            format!("2026-03-02,{s10},1,0,1"),
            format!("2026-03-02,{s10},11,2,1"),
            format!("2026-03-02,{s10},13,8,1"),
            format!("2026-03-02,{s15},11,2,1"),
        ]
    );
}

#[test]
fn transitions_ordered_by_start_then_shop_within_one_mall_visit() {
    let s = settings("UTC"); // shop gap 10 min, mall gap 15 min, qualifying ≥ 5 min at ≥ -65
    let t0 = ts("2026-03-02T10:00:00Z");
    let (a, b) = ("00:00:00:00:00:0a", "00:00:00:00:00:0b");
    let mut recs = Vec::new();
    // A: S2 and S1 both start at t0 (tie → S1 first), then S3 at +400: S1→S2, S2→S3.
    recs.extend(stay(a, AP2, "S2", t0, t0 + 300, 300, -50));
    recs.extend(stay(a, AP1, "S1", t0, t0 + 300, 300, -50));
    recs.extend(stay(a, AP3, "S3", t0 + 400, t0 + 700, 300, -50));
    // A again after a 2300 s silence: a new mall visit, so S3→S1 is not a transition.
    recs.extend(stay(a, AP1, "S1", t0 + 3000, t0 + 3300, 300, -50));
    // B: S1 100..1200 and S2 500..1600 (each one shop visit), a weak S3 blip in between that
    // does not qualify: S1→S2 once.
    recs.extend([100, 400, 900, 1200].map(|o| (t0 + o, b, AP1, "S1", -50)));
    recs.extend([500, 800, 1300, 1600].map(|o| (t0 + o, b, AP2, "S2", -50)));
    recs.extend([450, 460].map(|o| (t0 + o, b, AP3, "S3", -90)));
    let t = tables(&s, &dims(), &recs);
    assert_eq!(t["shop_transitions_daily"], ["2026-03-02,S1,S2,2,2", "2026-03-02,S2,S3,1,1"]);
}

/// Staff device S (6 h a day on three days) and visitor V on each day, 2026-03-02..04.
fn staff_week() -> Vec<(i64, &'static str, &'static str, &'static str, i64)> {
    let mut recs = Vec::new();
    for day in ["2026-03-02", "2026-03-03", "2026-03-04"] {
        let t0 = ts(&format!("{day}T09:00:00Z"));
        recs.extend(stay("00:00:00:00:05:05", AP1, "S1", t0, t0 + 6 * 3600, 600, -40));
        recs.extend(stay("00:00:00:00:0f:0f", AP2, "S2", t0 + 3600, t0 + 4200, 300, -50));
    }
    recs
}

#[test]
fn staff_are_flagged_in_section_7_and_excluded_everywhere_on_request() {
    let mut s = settings("UTC");
    let t = tables(&s, &dims(), &staff_week());
    let (d2, d3, d4) = ("2026-03-02", "2026-03-03", "2026-03-04");
    // Staff on the 4th only (third 6-hour day in the window).
    assert_eq!(t["staff_devices_daily"], [format!("{d4},00:00:00:00:05:05,6.0,3")]);
    // Flag policy: seed tables still count S; §7 tables do not.
    assert_eq!(t["mall_daily_visitors"], [format!("{d2},2"), format!("{d3},2"), format!("{d4},2")]);
    let staff_col: Vec<&str> = t["mall_daily_engagement"].iter().map(|r| r.split(',').nth(13).unwrap()).collect();
    assert_eq!(staff_col, ["0", "0", "1"]);
    let detected: Vec<&str> = t["mall_daily_engagement"].iter().map(|r| r.split(',').nth(1).unwrap()).collect();
    assert_eq!(detected, ["2", "2", "1"]);
    // Loyalty on the 4th: V only (daily needs 5 days: occasional); S is not a visitor.
    assert_eq!(t["mall_daily_loyalty"][2], format!("{d4},1,0,0,0,1,1"));

    // Exclude policy: S vanishes from the 4th in every table, and from customers' days.
    s.staff_exclude = true;
    let t = tables(&s, &dims(), &staff_week());
    assert_eq!(t["mall_daily_visitors"], [format!("{d2},2"), format!("{d3},2"), format!("{d4},1")]);
    assert_eq!(t["shop_daily_visitors"][4], format!("{d4},S2,Shop Two,1"));
    assert_eq!(t["shop_daily_visitors"].len(), 5, "{:?}", t["shop_daily_visitors"]);
    assert!(t["customer_positions"].iter().filter(|r| r.starts_with(d4)).all(|r| !r.contains("00:00:00:00:05:05")));
    let s_row = t["customers"].iter().find(|r| r.starts_with("00:00:00:00:05:05")).unwrap();
    assert!(s_row.ends_with(",2026-03-02,2026-03-03,2"), "first 2 Mar, last 3 Mar, 2 days: {s_row}");
    assert_eq!(t["staff_devices_daily"], [format!("{d4},00:00:00:00:05:05,6.0,3")], "still listed");
}

#[test]
fn a_shop_visit_spanning_a_mall_split_belongs_to_the_mall_visit_of_its_first_record() {
    let mut s = settings("UTC");
    s.visit_gap = 1200; // longer than the mall gap (900)
    let t0 = ts("2026-03-02T10:00:00Z");
    let (a, b) = ("00:00:00:00:00:0a", "00:00:00:00:00:0b");
    let t = tables(
        &s,
        &dims(),
        &[
            // A: S1 at 0 and 1000 is one shop visit, but 0 | 1000,1100,1400 are two mall
            // visits; S1 belongs to the first, S2 (1100..1400) to the second: no transition.
            (t0, a, AP1, "S1", -50),
            (t0 + 1000, a, AP1, "S1", -50),
            (t0 + 1100, a, AP2, "S2", -50),
            (t0 + 1400, a, AP2, "S2", -50),
            // B: the same S1 visit, S2 at 500..800 fills the silence: one mall visit, S1→S2.
            (t0, b, AP1, "S1", -50),
            (t0 + 1000, b, AP1, "S1", -50),
            (t0 + 500, b, AP2, "S2", -50),
            (t0 + 800, b, AP2, "S2", -50),
        ],
    );
    assert_eq!(t["shop_transitions_daily"], ["2026-03-02,S1,S2,1,1"]);
    // Mall visits: A 0 s (not qualifying) and 400 s; B 1000 s → 2 qualifying of 400 and 1000 s.
    assert_eq!(t["mall_daily_engagement"], ["2026-03-02,2,2,0,1.0,2,700.0,700.0,0,2,0,0,0,0,0.0"]);
}
