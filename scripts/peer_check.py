#!/usr/bin/env python3
"""Checks a peer's seed tables (scripts/bench) against footfall's, table by table (EXCEPT ALL
both ways): the peer is known faithful only if this passes.

    peer_check.py MALL_DIR PEER_DIR

MALL_DIR/out holds footfall's tables; PEER_DIR/<table>.parquet the peer's. `customers` is read
as footfall documents it (README, "customers"): customers_recent plus the settled rows of
devices not in it.
"""
import sys
import duckdb

d, peer = sys.argv[1:3]
con = duckdb.connect()
con.execute("SET TimeZone='Asia/Shanghai'")
checks = {"mall_daily_visitors": "date,visitors", "shop_daily_visitors": "date,shop_code,visitors",
          "mall_hourly_visitors": "date,epoch(hour_start),visitors", "peak_hour_daily": "date,epoch(hour_start),visitors",
          "top_shops_daily": "date,rank,shop_code,visitors", "customers": "user_device_mac,epoch(first_seen),epoch(last_seen),first_date,last_date,days_seen",
          "mall_daily_new_customers": "date,visitors,new_customers", "customer_positions": "date,epoch(second),user_device_mac,ap_mac,shop_code,rssi_min,rssi_max,x,y,is_new_customer",
          "latest_positions": "date,user_device_mac,epoch(second),ap_mac,shop_code", "favorite_shop_daily": "date,user_device_mac,shop_code,visits,dwell_seconds",
          "repeat_shop_visits_daily": "date,user_device_mac,shop_code,visits"}
recent, settled = (f"read_parquet('{d}/out/customers_{k}/*.parquet')" for k in ("recent", "settled"))
for t, cols in checks.items():
    if t == "customers":
        src = f"(SELECT * FROM {recent} UNION ALL SELECT s.* FROM {settled} s ANTI JOIN {recent} r USING (user_device_mac))"
    else:
        # Date-partitioned tables keep `date` in the path only (Hive layout).
        src = f"read_parquet('{d}/out/{t}/**/*.parquet', hive_partitioning=true)"
    a = f"SELECT {cols} FROM {src}"
    b = f"SELECT {cols} FROM '{peer}/{t}.parquet'"
    n = con.execute(f"SELECT (SELECT count(*) FROM ({a} EXCEPT ALL {b})) + (SELECT count(*) FROM ({b} EXCEPT ALL {a}))").fetchone()[0]
    rows = con.execute(f"SELECT count(*) FROM ({a})").fetchone()[0]
    if n or not rows:
        sys.exit(f"{peer} and footfall disagree on {t}: {n} rows differ, footfall has {rows}")
print(f"peer check: {peer} equals footfall on all {len(checks)} tables", file=sys.stderr)
