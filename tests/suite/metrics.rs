//! Every seed metric on tiny hand-made inputs, answers worked out by hand (see comments).
//! Inputs go through the real parser (`ingest::parse_frame`) and the real catalogue.

use crate::frames::*;
use polars::prelude::*;

#[test]
fn visits_gap_favourite_repeat_and_top_shops() {
    let s = settings("UTC");
    let t0 = ts("2026-03-02T10:00:00Z");
    let (a, b, c, d) = ("00:00:00:00:00:0a", "00:00:00:00:00:0b", "00:00:00:00:00:0c", "00:00:00:00:00:0d");
    let t = tables(
        &s,
        &dims(),
        &[
            // A at S1: 0,300,900 is one visit (900-300 = 600, not more than the gap), 1501 a second one.
            (t0, a, AP1, "S1", -60),
            (t0 + 300, a, AP1, "S1", -60),
            (t0 + 900, a, AP1, "S1", -60),
            (t0 + 1501, a, AP1, "S1", -60),
            // A at S2: one visit of 400 s.
            (t0 + 3000, a, AP2, "S2", -60),
            (t0 + 3400, a, AP2, "S2", -60),
            // B: S1 one visit dwell 0, S2 one visit dwell 50 → favourite S2 (longer dwell).
            (t0 + 100, b, AP1, "S1", -70),
            (t0 + 200, b, AP2, "S2", -70),
            (t0 + 250, b, AP2, "S2", -70),
            // C: S1 and S2 one visit of 10 s each → favourite S1 (shop_code asc).
            (t0 + 10, c, AP1, "S1", -70),
            (t0 + 20, c, AP1, "S1", -70),
            (t0 + 30, c, AP2, "S2", -70),
            (t0 + 40, c, AP2, "S2", -70),
            // D at 11:00 at S3, a shop missing from area_shop.
            (t0 + 3600, d, AP3, "S3", -50),
        ],
    );
    assert_eq!(t["mall_daily_visitors"], ["2026-03-02,4"]);
    assert_eq!(t["shop_daily_visitors"], ["2026-03-02,S1,Shop One,3", "2026-03-02,S2,Shop Two,3", "2026-03-02,S3,,1"]);
    let h10 = t0.to_string();
    let h11 = (t0 + 3600).to_string();
    assert_eq!(t["mall_hourly_visitors"], [format!("2026-03-02,{h10},3"), format!("2026-03-02,{h11},1")]);
    assert_eq!(t["peak_hour_daily"], [format!("2026-03-02,{h10},3")]);
    assert_eq!(
        t["top_shops_daily"],
        ["2026-03-02,1,S1,Shop One,3", "2026-03-02,2,S2,Shop Two,3", "2026-03-02,3,S3,,1"]
    );
    assert_eq!(
        t["favorite_shop_daily"],
        [
            format!("2026-03-02,{a},S1,Shop One,2,900"),
            format!("2026-03-02,{b},S2,Shop Two,1,50"),
            format!("2026-03-02,{c},S1,Shop One,1,10"),
            format!("2026-03-02,{d},S3,,1,0"),
        ]
    );
    assert_eq!(t["repeat_shop_visits_daily"], [format!("2026-03-02,{a},S1,Shop One,2")]);
    assert_eq!(t["mall_daily_new_customers"], ["2026-03-02,4,4,0,1.0"]);
    // customer_positions: one row per (second, device, AP, shop): all 14 records are distinct.
    assert_eq!(t["customer_positions"].len(), 14);
    assert_eq!(t["customer_positions"][0], format!("2026-03-02,{t0},{a},{AP1},S1,-60,-60,,,true"));
    assert_eq!(t["latest_positions"][0], format!("2026-03-02,{a},{},{AP2},S2,,", t0 + 3400));
}

#[test]
fn ties_peak_hour_latest_position_and_top_n() {
    let mut s = settings("UTC");
    s.top_shops = 1;
    let mut d = dims();
    d.places = df!("user_device_mac" => [0x0eu64], "x" => [Some(1.5f64)], "y" => [Some(2.5f64)]).unwrap();
    let t0 = ts("2026-03-02T10:00:00Z");
    let (e, f, g, h) = ("00:00:00:00:00:0e", "00:00:00:00:00:0f", "00:00:00:00:00:10", "00:00:00:00:00:11");
    let t = tables(
        &s,
        &d,
        &[
            // Hours 10:00 and 12:00 both have 2 devices: the peak is the earlier one.
            (t0 - 60, e, AP2, "S2", -40),
            // E's last second: two APs at -50 → ap_mac ascending picks AP1.
            (t0, e, AP2, "S2", -50),
            (t0, e, AP1, "S1", -50),
            // F's last second: AP2 is stronger.
            (t0 + 5, f, AP1, "S1", -70),
            (t0 + 5, f, AP2, "S2", -60),
            (t0 + 7200, g, AP1, "S1", -70),
            (t0 + 7200, h, AP2, "S2", -70),
        ],
    );
    // (t0 - 60 is 09:59: E is also in hour 09:00 with 1 device.)
    assert_eq!(t["peak_hour_daily"], [format!("2026-03-02,{t0},2")]);
    assert_eq!(
        t["latest_positions"],
        [
            format!("2026-03-02,{e},{t0},{AP1},S1,1.5,2.5"),
            format!("2026-03-02,{f},{},{AP2},S2,,", t0 + 5),
            format!("2026-03-02,{g},{},{AP1},S1,,", t0 + 7200),
            format!("2026-03-02,{h},{},{AP2},S2,,", t0 + 7200),
        ]
    );
    // S1: E, F, G = 3; S2: E, F, H = 3 → tie → S1 only with N = 1.
    assert_eq!(t["top_shops_daily"], ["2026-03-02,1,S1,Shop One,3"]);
    // customer_positions: E's two APs in one second are two rows, with min/max per row.
    assert!(t["customer_positions"].contains(&format!("2026-03-02,{t0},{e},{AP1},S1,-50,-50,1.5,2.5,true")));
}

#[test]
fn visits_never_cross_local_midnight_and_new_customers() {
    let s = settings("Europe/Berlin");
    let a = "00:00:00:00:00:0a";
    // 23:55 and 00:05 local (CET, UTC+1): 10 minutes apart, but two dates.
    let t1 = ts("2026-03-28T22:55:00Z");
    let t2 = ts("2026-03-28T23:05:00Z");
    let t = tables(&s, &dims(), &[(t1, a, AP1, "S1", -60), (t2, a, AP1, "S1", -60)]);
    assert_eq!(t["mall_daily_visitors"], ["2026-03-28,1", "2026-03-29,1"]);
    assert_eq!(
        t["favorite_shop_daily"],
        [format!("2026-03-28,{a},S1,Shop One,1,0"), format!("2026-03-29,{a},S1,Shop One,1,0")]
    );
    assert_eq!(t["repeat_shop_visits_daily"], Vec::<String>::new());
    assert_eq!(t["customers"], [format!("{a},{t1},{t2},2026-03-28,2026-03-29,2")]);
    assert_eq!(t["mall_daily_new_customers"], ["2026-03-28,1,1,0,1.0", "2026-03-29,1,0,1,0.0"]);
}

#[test]
fn dst_spring_forward_day_has_23_hours() {
    let s = settings("Europe/Berlin");
    let a = "00:00:00:00:00:0a";
    // Every hour of local 2026-03-29 at :30, from 00:30 CET (23:30Z) to 23:30 CEST (21:30Z).
    let start = ts("2026-03-28T23:30:00Z");
    let recs: Vec<_> = (0..23).map(|i| (start + i * 3600, a, AP1, "S1", -60)).collect();
    let t = tables(&s, &dims(), &recs);
    let hours = &t["mall_hourly_visitors"];
    assert_eq!(hours.len(), 23, "{hours:?}");
    assert!(hours.iter().all(|r| r.starts_with("2026-03-29,") && r.ends_with(",1")));
    // 02:00 local does not exist: after 01:00 CET (00:00Z) comes 03:00 CEST (01:00Z).
    assert_eq!(hours[1], format!("2026-03-29,{},1", ts("2026-03-29T00:00:00Z")));
    assert_eq!(hours[2], format!("2026-03-29,{},1", ts("2026-03-29T01:00:00Z")));
    assert_eq!(t["peak_hour_daily"], [format!("2026-03-29,{},1", ts("2026-03-28T23:00:00Z"))]);
}

#[test]
fn fall_back_day_has_25_hours() {
    let s = settings("Europe/Berlin");
    let a = "00:00:00:00:00:0a";
    // 2026-10-25: 03:00 CEST goes back to 02:00 CET; local day = 22:00Z (24th) .. 23:00Z.
    let start = ts("2026-10-24T22:30:00Z");
    let recs: Vec<_> = (0..25).map(|i| (start + i * 3600, a, AP1, "S1", -60)).collect();
    let t = tables(&s, &dims(), &recs);
    assert_eq!(t["mall_hourly_visitors"].len(), 25);
    assert_eq!(t["mall_daily_visitors"], ["2026-10-25,1"]);
}

#[test]
fn duplicated_records_change_nothing() {
    let s = settings("Asia/Shanghai");
    let t0 = ts("2026-03-02T02:00:00Z");
    let macs = ["00:00:00:00:00:01", "00:00:00:00:00:02", "02:00:00:00:00:03"];
    let mut recs = Vec::new();
    for i in 0..60i64 {
        let m = macs[(i % 3) as usize];
        let (ap, shop) = if i % 5 == 0 { (AP2, "S2") } else { (AP1, "S1") };
        recs.push((t0 + i * 97, m, ap, shop, -40 - (i % 30)));
    }
    let once = tables(&s, &dims(), &recs);
    let mut twice = recs.clone();
    twice.extend(recs.iter().rev().cloned());
    assert_eq!(once, tables(&s, &dims(), &twice));
    assert!(!once["customer_positions"].is_empty());
}

#[test]
fn randomized_macs_can_be_excluded() {
    let mut s = settings("UTC");
    let t0 = ts("2026-03-02T10:00:00Z");
    let recs = [(t0, "00:00:00:00:00:01", AP1, "S1", -50), (t0, "02:00:00:00:00:02", AP1, "S1", -50)];
    assert_eq!(tables(&s, &dims(), &recs)["mall_daily_visitors"], ["2026-03-02,2"]);
    s.exclude_randomized = true;
    assert_eq!(tables(&s, &dims(), &recs)["mall_daily_visitors"], ["2026-03-02,1"]);
}
