//! What a daily query reads: one day's context, and the joins with the dimensions that
//! several queries share.

use polars::prelude::*;

use crate::config::Settings;
use crate::dims::Dims;
use crate::schema::{Pseudonyms, MAC};

/// Everything a daily query may read.
pub struct DayCtx<'a> {
    pub day: i32,
    pub pos: DataFrame,
    pub visits: DataFrame,
    pub mall: DataFrame,
    pub status: DataFrame,
    /// Each device of the day with its first day ever (`first_date`).
    pub first_dates: &'a DataFrame,
    pub dims: &'a Dims,
    pub settings: &'a Settings,
    /// Pseudonyms of device ids when MACs are pseudonymised.
    pub names: Option<&'a Pseudonyms>,
}

pub fn with_shop_names(lf: LazyFrame, dims: &Dims) -> LazyFrame {
    lf.left_join(dims.shops.clone().lazy(), col("shop_code"), col("shop_code"))
}

/// `lf` with place_info's coordinates, in `lf`'s row order (rows already in key order then
/// need no sort in the writer).
pub fn with_place(lf: LazyFrame, dims: &Dims) -> LazyFrame {
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    lf.join(dims.places.clone().lazy(), [col(MAC)], [col(MAC)], args)
}

/// (x, y) by device or AP MAC; either may be unknown.
pub type Coordinates = PlHashMap<u64, (Option<f64>, Option<f64>)>;

/// (x, y) by key of a dimension frame (place_info by device, ap_info by AP MAC).
pub fn coordinates(df: &DataFrame, key: &str) -> PolarsResult<Coordinates> {
    let (k, x, y) = (df.column(key)?.u64()?, df.column("x")?.f64()?, df.column("y")?.f64()?);
    Ok(k.iter().zip(x.iter().zip(y.iter())).filter_map(|(k, xy)| Some((k?, xy))).collect())
}

/// The day's rollup as slices, checked once for what the hand-written scans rely on: no
/// nulls, one chunk, rows in time order (the rollup's (second, device, AP, shop) order).
pub struct Rows<'a> {
    pub second: &'a [i64],
    pub mac: &'a [u64],
    pub ap: &'a [u64],
    pub hour: &'a [i64],
    pub rssi_max: &'a [i32],
}

pub fn rows(pos: &DataFrame) -> PolarsResult<Rows<'_>> {
    if pos.height() == 0 {
        return Ok(Rows { second: &[], mac: &[], ap: &[], hour: &[], rssi_max: &[] });
    }
    let whole = |name: &str| polars_err!(ComputeError: "a day's rollup column '{name}' has nulls or several chunks");
    let r = Rows {
        second: pos.column("second")?.i64()?.cont_slice().map_err(|_| whole("second"))?,
        mac: pos.column(MAC)?.u64()?.cont_slice().map_err(|_| whole(MAC))?,
        ap: pos.column("ap_mac")?.u64()?.cont_slice().map_err(|_| whole("ap_mac"))?,
        hour: pos.column("hour")?.i64()?.cont_slice().map_err(|_| whole("hour"))?,
        rssi_max: pos.column("rssi_max")?.i32()?.cont_slice().map_err(|_| whole("rssi_max"))?,
    };
    if r.second.windows(2).any(|w| w[0] > w[1]) {
        polars_bail!(ComputeError: "a day's rollup is not in time order");
    }
    Ok(r)
}
