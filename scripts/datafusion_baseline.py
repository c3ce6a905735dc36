#!/usr/bin/env python3
"""DataFusion peer for scripts/bench: the seed tables (docs/tables.md) in DataFusion SQL,
including the parsing and rejection rules, over the same Parquet files, results written to
Parquet; checked equal to footfall's tables by scripts/peer_check.py.

    datafusion_baseline.py PROBES_DIR DIMS_DIR OUT_DIR TIMEZONE

Timestamps are written in milliseconds (Parquet has no seconds unit). Every input column is
read as a string (each file is cast to the table's schema: the files hold
occur_time as epoch integers, epoch strings or timestamps). Local time is UTC plus the zone's
offset, so the zone must keep one offset all year (as in duckdb_baseline.py; checked).
"""
import os, sys, time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
import pyarrow as pa
from datafusion import SessionContext, SessionConfig

probes, dims, out, tz = sys.argv[1:5]
zone = ZoneInfo(tz)
offsets = {datetime(2026, m, 1, tzinfo=timezone.utc).astimezone(zone).utcoffset() for m in range(1, 13)}
if len(offsets) != 1:
    sys.exit(f"{tz} changes its offset during the year: not supported by this baseline")
OFF = int(offsets.pop().total_seconds())

ctx = SessionContext(SessionConfig().with_target_partitions(os.cpu_count()))
def q(sql):
    return ctx.sql(sql).collect()

t0 = time.time()
schema = pa.schema([(c, pa.string()) for c in ("occur_time", "user_device_mac", "ap_mac", "shop_code", "rssi")])
ctx.register_parquet("src", probes, schema=schema, file_extension=".parquet")
HEX = "[0-9a-f]{2}"
MAC_RE = f"^(({HEX}:){{5}}{HEX}|({HEX}-){{5}}{HEX}|[0-9a-f]{{12}})$"
def norm(c):
    x = f"lower(trim({c}))"
    h = f"replace(replace({x}, ':', ''), '-', '')"
    pairs = ", ".join(f"substr({h}, {i}, 2)" for i in range(1, 12, 2))
    return (f"CASE WHEN regexp_like({x}, '{MAC_RE}') THEN CASE WHEN {c} = {x} AND length({c}) = 17 AND strpos({c}, '-') = 0 "
            f"THEN {c} ELSE concat_ws(':', {pairs}) END END")

q(f"""
CREATE TABLE ev AS
SELECT t, mac, ap, shop, rssi, t + {OFF} AS lt FROM (
  SELECT CASE WHEN regexp_like(trim(occur_time), '^-?[0-9]+$') THEN try_cast(trim(occur_time) AS BIGINT)
              WHEN regexp_like(trim(occur_time), '^-?[0-9]+\\\\.[0-9]+$') THEN CAST(floor(try_cast(trim(occur_time) AS DOUBLE)) AS BIGINT)
              ELSE to_unixtime(try_cast(occur_time AS TIMESTAMP)) END AS t,
         {norm('user_device_mac')} AS mac, {norm('ap_mac')} AS ap, nullif(shop_code, '') AS shop,
         try_cast(trim(rssi) AS INT) AS rssi
  FROM src) p
WHERE t IS NOT NULL AND mac IS NOT NULL AND ap IS NOT NULL AND shop IS NOT NULL AND rssi BETWEEN -120 AND 0""")
# Local date and hour from local epoch seconds (floor division: also before 1970).
q("""
CREATE TABLE pos AS
SELECT CAST(to_timestamp_seconds((lt - (lt % 86400 + 86400) % 86400)) AS DATE) AS date, t AS second, mac, ap, shop,
       min(rssi) AS rssi_min, max(rssi) AS rssi_max, min(t - (lt % 3600 + 3600) % 3600) AS hour
FROM ev GROUP BY 1, 2, 3, 4, 5""")
q("DROP TABLE ev")
# Visits per (date, device, shop) from the long gaps, as in duckdb_baseline.py.
q("""
CREATE TABLE shop_visits AS
SELECT date, mac, shop, 1 + sum(CASE WHEN gap > 600 THEN 1 ELSE 0 END) AS visits,
       max(second) - min(second) - sum(CASE WHEN gap > 600 THEN gap ELSE 0 END) AS dwell_seconds
FROM (SELECT date, mac, shop, second, coalesce(second - lag(second) OVER (PARTITION BY date, mac, shop ORDER BY second), 0) AS gap
      FROM (SELECT DISTINCT date, mac, shop, second FROM pos) s) g
GROUP BY date, mac, shop""")
strings = lambda *cols: pa.schema([(c, pa.string()) for c in cols])
ctx.register_csv("shops_raw", f"{dims}/area_shop.csv", schema=strings("id", "shop_code", "shop_name", "floor", "category"))
q("CREATE TABLE shops AS SELECT shop_code, shop_name FROM shops_raw")
ctx.register_csv("places_raw", f"{dims}/place_info.csv", schema=strings("user_device_mac", "used_x", "used_y", "min_rssi"))
q(f"CREATE TABLE places AS SELECT {norm('user_device_mac')} AS mac, CAST(used_x AS DOUBLE) AS x, CAST(used_y AS DOUBLE) AS y FROM places_raw")
q("""
CREATE TABLE customers AS
SELECT mac AS user_device_mac, to_timestamp_millis(min(second) * 1000) AS first_seen, to_timestamp_millis(max(second) * 1000) AS last_seen,
       min(date) AS first_date, max(date) AS last_date, count(DISTINCT date) AS days_seen FROM pos GROUP BY mac""")
first = lambda key, order, sql: f"SELECT * EXCEPT (rn) FROM (SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS rn FROM ({sql}) x) y WHERE rn = 1"
hourly = "SELECT date, to_timestamp_millis(hour * 1000) AS hour_start, count(DISTINCT mac) AS visitors FROM pos GROUP BY date, hour"
shop_day = "SELECT date, shop AS shop_code, count(DISTINCT mac) AS visitors FROM pos GROUP BY date, shop"
tables = {
 "mall_daily_visitors": "SELECT date, count(DISTINCT mac) AS visitors FROM pos GROUP BY date",
 "shop_daily_visitors": shop_day,
 "mall_hourly_visitors": hourly,
 "peak_hour_daily": first("date", "visitors DESC, hour_start", hourly),
 "top_shops_daily": f"SELECT * FROM (SELECT date, row_number() OVER (PARTITION BY date ORDER BY visitors DESC, shop_code) AS rank, shop_code, visitors FROM ({shop_day}) s) r WHERE rank <= 5",
 "customers": "SELECT * FROM customers",
 "mall_daily_new_customers": "SELECT date, count(*) AS visitors, sum(CASE WHEN first_date = date THEN 1 ELSE 0 END) AS new_customers FROM (SELECT DISTINCT p.date, p.mac, c.first_date FROM pos p JOIN customers c ON c.user_device_mac = p.mac) d GROUP BY date",
 "customer_positions": "SELECT p.date, to_timestamp_millis(p.second * 1000) AS second, p.mac AS user_device_mac, p.ap AS ap_mac, p.shop AS shop_code, p.rssi_min, p.rssi_max, pl.x, pl.y, c.first_date = p.date AS is_new_customer FROM pos p LEFT JOIN places pl ON pl.mac = p.mac JOIN customers c ON c.user_device_mac = p.mac",
 "latest_positions": first("date, user_device_mac", "rssi_max DESC, ap_mac, shop_code",
     "SELECT p.date, p.mac AS user_device_mac, to_timestamp_millis(p.second * 1000) AS second, p.ap AS ap_mac, p.shop AS shop_code, p.rssi_max FROM pos p JOIN (SELECT date, mac, max(second) AS second FROM pos GROUP BY date, mac) l ON l.date = p.date AND l.mac = p.mac AND l.second = p.second"),
 "favorite_shop_daily": first("date, user_device_mac", "visits DESC, dwell_seconds DESC, shop_code",
     "SELECT date, mac AS user_device_mac, shop AS shop_code, visits, dwell_seconds FROM shop_visits"),
 "repeat_shop_visits_daily": "SELECT date, mac AS user_device_mac, shop AS shop_code, visits FROM shop_visits WHERE visits >= 2",
}
os.makedirs(out, exist_ok=True)
for name, sql in tables.items():
    ctx.sql(sql).write_parquet(f"{out}/{name}.parquet")
print(f"run {time.time() - t0:.2f}")
