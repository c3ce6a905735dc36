#!/usr/bin/env python3
"""ClickHouse (chdb, in-process) peer for scripts/bench: the seed tables (docs/tables.md) in
ClickHouse SQL, including the parsing and rejection rules, over the same Parquet files, results
written to Parquet; checked equal to footfall's tables by scripts/peer_check.py.

    chdb_baseline.py PROBES_DIR DIMS_DIR OUT_DIR TIMEZONE

Every input column is read as a string (the files hold occur_time as epoch integers, epoch
strings or timestamps): with session_timezone UTC a timestamp reads as its UTC text. The
timezone must not have DST (as in duckdb_baseline.py).
"""
import os, sys, time
from chdb import session

probes, dims, out, tz = sys.argv[1:5]
s = session.Session()
def q(sql, fmt="CSV"):
    return s.query(sql, fmt)
q("SET session_timezone = 'UTC'")
q(f"SET max_threads = {os.cpu_count()}")

src = (f"file('{probes}/**/*.parquet', 'Parquet', 'occur_time Nullable(String), user_device_mac Nullable(String), "
       "ap_mac Nullable(String), shop_code Nullable(String), rssi Nullable(String)')")
HEX = "[0-9a-f]{2}"
MAC_RE = f"^(({HEX}:){{5}}{HEX}|({HEX}-){{5}}{HEX}|[0-9a-f]{{12}})$"
def norm(c):
    x = f"lower(trimBoth({c}))"
    h = f"replaceAll(replaceAll({x}, ':', ''), '-', '')"
    pairs = ", ':', ".join(f"substring({h}, {i}, 2)" for i in range(1, 12, 2))
    return f"if(match({x}, '{MAC_RE}'), if({c} = {x} AND length({c}) = 17 AND position({c}, '-') = 0, {c}, concat({pairs})), NULL)"

t0 = time.time()
q("CREATE DATABASE IF NOT EXISTS b")
q("USE b")
q(f"""
CREATE TABLE ev ENGINE = Memory AS
SELECT t, mac, ap, shop, rssi, toDateTime(t, '{tz}') AS lt FROM (
  SELECT multiIf(match(trimBoth(occur_time), '^-?[0-9]+$'), toInt64OrNull(trimBoth(occur_time)),
                 match(trimBoth(occur_time), '^-?[0-9]+\\\\.[0-9]+$'), toInt64(floor(toFloat64OrNull(trimBoth(occur_time)))),
                 intDiv(toUnixTimestamp64Milli(parseDateTime64BestEffortOrNull(occur_time, 3, 'UTC')), 1000)) AS t,
         {norm('user_device_mac')} AS mac, {norm('ap_mac')} AS ap, nullIf(shop_code, '') AS shop,
         toInt32OrNull(trimBoth(rssi)) AS rssi
  FROM {src})
WHERE t IS NOT NULL AND mac IS NOT NULL AND ap IS NOT NULL AND shop IS NOT NULL AND rssi BETWEEN -120 AND 0""")
q(f"""
CREATE TABLE pos ENGINE = Memory AS
SELECT toDate(lt) AS date, assumeNotNull(t) AS second, assumeNotNull(mac) AS mac, assumeNotNull(ap) AS ap, assumeNotNull(shop) AS shop,
       min(rssi) AS rssi_min, max(rssi) AS rssi_max, any(toStartOfHour(lt)) AS hour
FROM ev GROUP BY date, second, mac, ap, shop""")
q("DROP TABLE ev")
# Visits per (date, device, shop) from the long gaps, as in duckdb_baseline.py.
q("""
CREATE TABLE shop_visits ENGINE = Memory AS
SELECT date, mac, shop, 1 + countIf(gap > 600) AS visits, max(second) - min(second) - coalesce(sumIf(gap, gap > 600), 0) AS dwell_seconds
FROM (SELECT date, mac, shop, second,
             second - lagInFrame(second, 1, second) OVER (PARTITION BY date, mac, shop ORDER BY second
                                                         ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS gap
      FROM (SELECT DISTINCT date, mac, shop, second FROM pos))
GROUP BY date, mac, shop""")
q(f"CREATE TABLE shops ENGINE = Memory AS SELECT * FROM file('{dims}/area_shop.csv', 'CSVWithNames', 'shop_code String, shop_name String')")
q(f"""CREATE TABLE places ENGINE = Memory AS SELECT {norm('user_device_mac')} AS mac, toFloat64(used_x) AS x, toFloat64(used_y) AS y
      FROM file('{dims}/place_info.csv', 'CSVWithNames', 'user_device_mac String, used_x String, used_y String')""")
q("""
CREATE TABLE customers ENGINE = Memory AS
SELECT mac AS user_device_mac, toDateTime64(min(second), 3, 'UTC') AS first_seen, toDateTime64(max(second), 3, 'UTC') AS last_seen,
       min(date) AS first_date, max(date) AS last_date, uniqExact(date) AS days_seen FROM pos GROUP BY mac""")
ts = "toDateTime64({}, 3, 'UTC')"
tables = {
 "mall_daily_visitors": "SELECT date, uniqExact(mac) AS visitors FROM pos GROUP BY date",
 "shop_daily_visitors": "SELECT p.date, p.shop AS shop_code, any(s.shop_name) AS shop_name, uniqExact(p.mac) AS visitors FROM pos p LEFT JOIN shops s ON s.shop_code = p.shop GROUP BY p.date, p.shop",
 "mall_hourly_visitors": f"SELECT date, {ts.format('hour')} AS hour_start, uniqExact(mac) AS visitors FROM pos GROUP BY date, hour",
 "peak_hour_daily": f"SELECT date, {ts.format('hour')} AS hour_start, uniqExact(mac) AS visitors FROM pos GROUP BY date, hour QUALIFY row_number() OVER (PARTITION BY date ORDER BY visitors DESC, hour_start) = 1",
 "top_shops_daily": "SELECT date, row_number() OVER (PARTITION BY date ORDER BY visitors DESC, shop_code) AS rank, shop_code, visitors FROM (SELECT date, shop AS shop_code, uniqExact(mac) AS visitors FROM pos GROUP BY date, shop) QUALIFY rank <= 5",
 "customers": "SELECT * FROM customers",
 "mall_daily_new_customers": "SELECT date, count() AS visitors, countIf(first_date = date) AS new_customers FROM (SELECT DISTINCT p.date AS date, p.mac, c.first_date AS first_date FROM pos p JOIN customers c ON c.user_device_mac = p.mac) GROUP BY date",
 "customer_positions": f"SELECT p.date AS date, {ts.format('p.second')} AS second, p.mac AS user_device_mac, p.ap AS ap_mac, p.shop AS shop_code, p.rssi_min AS rssi_min, p.rssi_max AS rssi_max, pl.x AS x, pl.y AS y, c.first_date = p.date AS is_new_customer FROM pos p LEFT JOIN places pl ON pl.mac = p.mac JOIN customers c ON c.user_device_mac = p.mac SETTINGS join_use_nulls = 1",
 "latest_positions": f"SELECT p.date AS date, p.mac AS user_device_mac, {ts.format('p.second')} AS second, p.ap AS ap_mac, p.shop AS shop_code FROM pos p JOIN (SELECT date, mac, max(second) AS second FROM pos GROUP BY date, mac) l ON l.date = p.date AND l.mac = p.mac AND l.second = p.second QUALIFY row_number() OVER (PARTITION BY p.date, p.mac ORDER BY p.rssi_max DESC, p.ap, p.shop) = 1",
 "favorite_shop_daily": "SELECT date, mac AS user_device_mac, shop AS shop_code, visits, dwell_seconds FROM shop_visits QUALIFY row_number() OVER (PARTITION BY date, mac ORDER BY visits DESC, dwell_seconds DESC, shop) = 1",
 "repeat_shop_visits_daily": "SELECT date, mac AS user_device_mac, shop AS shop_code, visits FROM shop_visits WHERE visits >= 2",
}
os.makedirs(out, exist_ok=True)
for name, sql in tables.items():
    path = f"{out}/{name}.parquet"
    if os.path.exists(path):
        os.remove(path)
    q(f"INSERT INTO FUNCTION file('{path}', 'Parquet') {sql}")
print(f"run {time.time() - t0:.2f}")
