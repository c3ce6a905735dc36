#!/usr/bin/env python3
"""DuckDB baseline for scripts/bench: the seed tables (docs/tables.md) in SQL, including the parsing and
rejection rules, over the same Parquet files, results written to Parquet. The fastest formulation
found so far: each input value parsed once (a table, not a subquery DuckDB would evaluate again
under the filter) and the canonical MAC spelling kept without rebuilding it; checked equal to
footfall's tables by scripts/peer_check.py.

    duckdb_baseline.py PROBES_DIR DIMS_DIR OUT_DIR TIMEZONE [--scan-only]

--scan-only measures the scan floor: reading the needed columns of every file once.
The timezone must not have DST (the bench uses the generator's default, Asia/Shanghai):
local hours are taken as date_trunc of local time, which is exact only without DST.
"""
import os, sys, time
import duckdb

probes, dims, out, tz = sys.argv[1:5]
scan_only = "--scan-only" in sys.argv
con = duckdb.connect()
con.execute(f"SET threads TO {os.cpu_count()}")
con.execute(f"SET TimeZone = '{tz}'")
src = f"read_parquet('{probes}/**/*.parquet', union_by_name = true, hive_partitioning = false)"
t0 = time.time()
if scan_only:
    # hash() forces every value to be decoded (count() could be answered from footer statistics).
    con.execute(f"SELECT sum(hash(occur_time, user_device_mac, ap_mac, shop_code, rssi)) FROM {src}").fetchall()
    print(f"scan {time.time() - t0:.2f}")
    sys.exit(0)

HEX = "[0-9a-f]{2}"
MAC_RE = f"({HEX}:){{5}}{HEX}|({HEX}-){{5}}{HEX}|[0-9a-f]{{12}}"
# A MAC in one of the accepted spellings → aa:bb:cc:dd:ee:ff, else NULL; the canonical spelling
# (most rows) is kept as is.
con.execute("CREATE MACRO hexonly(x) AS replace(replace(x, ':', ''), '-', '')")
con.execute(f"""CREATE MACRO nmac(m) AS (
  CASE WHEN regexp_full_match(lower(trim(m)), '{MAC_RE}') THEN
    CASE WHEN length(m) = 17 AND lower(m) = m AND strpos(m, '-') = 0 THEN m
         ELSE concat_ws(':', {", ".join(f"substr(hexonly(lower(trim(m))), {i}, 2)" for i in range(1, 12, 2))}) END END)""")
def norm(c):
    return f"nmac({c})"

# Parsed once into a table: DuckDB would otherwise evaluate the parsing expressions again in the
# filter pushed below the projection (measured: 2 x the time).
con.execute(f"""
CREATE TEMP TABLE parsed AS
SELECT CASE WHEN regexp_full_match(trim(o), '-?[0-9]+') THEN TRY_CAST(trim(o) AS BIGINT)
            WHEN regexp_full_match(trim(o), '-?[0-9]+\\.[0-9]+') THEN CAST(floor(CAST(trim(o) AS DOUBLE)) AS BIGINT)
            ELSE CAST(floor(epoch(TRY_CAST(o AS TIMESTAMP))) AS BIGINT) END AS t,
       {norm('m')} AS mac, {norm('a')} AS ap, NULLIF(s, '') AS shop, TRY_CAST(trim(r) AS INTEGER) AS rssi
FROM (SELECT CAST(occur_time AS VARCHAR) AS o, CAST(user_device_mac AS VARCHAR) AS m, CAST(ap_mac AS VARCHAR) AS a,
             CAST(shop_code AS VARCHAR) AS s, CAST(rssi AS VARCHAR) AS r FROM {src})""")
con.execute(f"""
CREATE TEMP TABLE ev AS
SELECT t, mac, ap, shop, rssi, timezone('{tz}', to_timestamp(t)) AS lt
FROM parsed WHERE t IS NOT NULL AND mac IS NOT NULL AND ap IS NOT NULL AND shop IS NOT NULL AND rssi BETWEEN -120 AND 0""")
con.execute("DROP TABLE parsed")
con.execute("""
CREATE TEMP TABLE pos AS
SELECT CAST(lt AS DATE) AS date, t AS second, mac, ap, shop, min(rssi) AS rssi_min, max(rssi) AS rssi_max,
       any_value(date_trunc('hour', lt)) AS hour
FROM ev GROUP BY ALL""")
# Visits per (date, device, shop) without numbering them: a visit ends at a gap over 10 min, so
# the visits are 1 + the long gaps and their dwell is the span less the long gaps (one window
# instead of two and a grouping by visit).
con.execute(f"""
CREATE TEMP TABLE shop_visits AS
WITH s AS (SELECT DISTINCT date, mac, shop, second FROM pos),
g AS (SELECT *, second - lag(second) OVER (PARTITION BY date, mac, shop ORDER BY second) AS gap FROM s)
SELECT date, mac, shop, 1 + count(*) FILTER (gap > 600) AS visits,
       max(second) - min(second) - coalesce(sum(gap) FILTER (gap > 600), 0) AS dwell_seconds
FROM g GROUP BY date, mac, shop""")
con.execute(f"CREATE TEMP TABLE shops AS SELECT * FROM read_csv('{dims}/area_shop.csv', all_varchar = true)")
con.execute(f"CREATE TEMP TABLE places AS SELECT {norm('user_device_mac')} AS mac, CAST(used_x AS DOUBLE) AS x, CAST(used_y AS DOUBLE) AS y FROM read_csv('{dims}/place_info.csv', all_varchar = true)")
con.execute("""
CREATE TEMP TABLE customers AS
SELECT mac AS user_device_mac, to_timestamp(min(second)) AS first_seen, to_timestamp(max(second)) AS last_seen,
       min(date) AS first_date, max(date) AS last_date, count(DISTINCT date) AS days_seen FROM pos GROUP BY mac""")
tables = {
 "mall_daily_visitors": "SELECT date, count(DISTINCT mac) AS visitors FROM pos GROUP BY date",
 "shop_daily_visitors": "SELECT p.date, p.shop AS shop_code, s.shop_name, count(DISTINCT p.mac) AS visitors FROM pos p LEFT JOIN shops s ON s.shop_code = p.shop GROUP BY ALL",
 "mall_hourly_visitors": "SELECT date, timezone('{tz}', hour) AS hour_start, count(DISTINCT mac) AS visitors FROM pos GROUP BY ALL",
 "peak_hour_daily": "SELECT date, hour_start, visitors FROM (SELECT date, timezone('{tz}', hour) AS hour_start, count(DISTINCT mac) AS visitors FROM pos GROUP BY ALL) QUALIFY row_number() OVER (PARTITION BY date ORDER BY visitors DESC, hour_start) = 1",
 "top_shops_daily": "SELECT date, row_number() OVER (PARTITION BY date ORDER BY visitors DESC, shop_code) AS rank, shop_code, shop_name, visitors FROM (SELECT p.date, p.shop AS shop_code, s.shop_name, count(DISTINCT p.mac) AS visitors FROM pos p LEFT JOIN shops s ON s.shop_code = p.shop GROUP BY ALL) QUALIFY rank <= 5",
 "customers": "SELECT * FROM customers",
 "mall_daily_new_customers": "SELECT date, count(*) AS visitors, count(*) FILTER (first_date = date) AS new_customers, count(*) - count(*) FILTER (first_date = date) AS returning_customers, (count(*) FILTER (first_date = date)) / count(*) AS new_ratio FROM (SELECT DISTINCT p.date, p.mac, c.first_date FROM pos p JOIN customers c ON c.user_device_mac = p.mac) GROUP BY date",
 "customer_positions": "SELECT p.date, to_timestamp(p.second) AS second, p.mac AS user_device_mac, p.ap AS ap_mac, p.shop AS shop_code, p.rssi_min, p.rssi_max, pl.x, pl.y, c.first_date = p.date AS is_new_customer FROM pos p LEFT JOIN places pl ON pl.mac = p.mac JOIN customers c ON c.user_device_mac = p.mac",
 # The last second of each device first (an aggregate), then the tie-break among its few rows:
 # a window over every row sorts them all (11 of 66 s at 20 M records).
 "latest_positions": "WITH last AS (SELECT date, mac, max(second) AS second FROM pos GROUP BY ALL) SELECT p.date, p.mac AS user_device_mac, to_timestamp(p.second) AS second, p.ap AS ap_mac, p.shop AS shop_code, pl.x, pl.y FROM pos p JOIN last USING (date, mac, second) LEFT JOIN places pl ON pl.mac = p.mac QUALIFY row_number() OVER (PARTITION BY p.date, p.mac ORDER BY p.rssi_max DESC, p.ap, p.shop) = 1",
 "favorite_shop_daily": "SELECT v.date, v.mac AS user_device_mac, v.shop AS shop_code, s.shop_name, v.visits, v.dwell_seconds FROM shop_visits v LEFT JOIN shops s ON s.shop_code = v.shop QUALIFY row_number() OVER (PARTITION BY v.date, v.mac ORDER BY v.visits DESC, v.dwell_seconds DESC, v.shop) = 1",
 "repeat_shop_visits_daily": "SELECT v.date, v.mac AS user_device_mac, v.shop AS shop_code, s.shop_name, v.visits FROM shop_visits v LEFT JOIN shops s ON s.shop_code = v.shop WHERE v.visits >= 2",
}
os.makedirs(out, exist_ok=True)
counts = {}
for name, q in tables.items():
    con.execute(f"COPY ({q.format(tz=tz)}) TO '{out}/{name}.parquet' (FORMAT PARQUET, COMPRESSION ZSTD)")
    counts[name] = con.execute(f"SELECT count(*) FROM '{out}/{name}.parquet'").fetchone()[0]
print(f"run {time.time() - t0:.2f}")
for k, v in counts.items():
    print(f"rows {k} {v}")
