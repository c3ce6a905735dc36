//! Chains: many malls in one deployment (`[[malls]]`).
//!
//! Each mall is processed exactly as a single mall is, into its own `mall=<id>` part of the
//! chain's outputs ([`crate::store::Location::for_mall`]), so one mall's failure never
//! touches another's tables or state. The chain tables are computed afterwards from what
//! every mall already keeps — its per-day device statuses, one row per device and local
//! day — never from probe files: their cost grows with the chain's device-days, not its
//! records, and they can run after malls were updated anywhere (`footfall chain` after a
//! fan-out on an orchestrator).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::config::MallPlan;
use crate::schema::MAC;
use crate::state::{Lock, Manifest};
use crate::store::Location;
use crate::tables::{partition_rel, publish_partition, published_dates};
use crate::timeutil::days_to_date;

/// The chain tables, published at the root of the chain's outputs.
pub const DAILY: &str = "chain_daily_visitors";
pub const OVERLAP: &str = "mall_overlap_daily";

/// Runs `f` for every mall, at most `jobs` at once, each mall isolated: a failure is that
/// mall's outcome, never another's. Results in the order of `malls`. Compute inside `f`
/// shares the process's one thread pool, so jobs overlap one mall's I/O with another's work
/// without multiplying threads.
pub fn for_each_mall<T: Send>(
    malls: &[MallPlan],
    jobs: usize,
    f: impl Fn(&MallPlan) -> Result<T> + Sync,
) -> Vec<Result<T>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<T>>>> = malls.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, malls.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(m) = malls.get(i) else { break };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(m)))
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("internal error (panic) while processing the mall")));
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(|| Err(anyhow::anyhow!("not run"))))
        .collect()
}

/// What [`recompute`] published.
#[derive(Debug, Default)]
pub struct ChainReport {
    pub malls_with_state: usize,
    pub dates: usize,
    pub device_days: usize,
}

/// A mall (its index) and the devices it saw on a date, sorted.
type Seen = (usize, Vec<u64>);

/// A date's (malls, visitors, cross-mall visitors) and shared visitors by pair of malls.
type Figures = ((i64, i64, i64), BTreeMap<(usize, usize), i64>);

/// Each mall's outputs and state (`None`: no state yet), and the malls (indices) with data on
/// each local date — from the manifests only, so memory holds no device list yet.
struct Malls {
    outs: Vec<Location>,
    states: Vec<Option<Manifest>>,
    by_date: BTreeMap<i32, Vec<usize>>,
}

impl Malls {
    fn load(root: &Location, ids: &[String]) -> Result<Malls> {
        let outs: Vec<Location> = ids.iter().map(|id| root.for_mall(id)).collect();
        let states = crate::par::map(&outs, |out| Manifest::load(out))?;
        let mut by_date: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (i, m) in states.iter().enumerate() {
            for d in m.iter().flat_map(|m| m.days()) {
                by_date.entry(d).or_default().push(i);
            }
        }
        Ok(Malls { outs, states, by_date })
    }

    /// The devices mall `i` saw on its local day `d` (its kept statuses), sorted.
    fn devices(&self, ids: &[String], i: usize, d: i32) -> Result<Vec<u64>> {
        let id = &ids[i];
        let state = self.states[i].as_ref().map(|m| m.objects(&self.outs[i]));
        let Some(st) =
            state.map(|s| s.get_day_statuses(d)).transpose().with_context(|| format!("mall {id}"))?.flatten()
        else {
            anyhow::bail!(
                "mall {id}: its state has no device statuses for {} (run `footfall run --mall {id}`)",
                days_to_date(d)
            )
        };
        let mut macs: Vec<u64> = st.column(MAC)?.u64()?.into_no_null_iter().collect();
        macs.sort_unstable();
        macs.dedup();
        Ok(macs)
    }
}

/// One date's chain figures: (malls, visitors, cross-mall visitors) and the shared
/// visitors of each pair of malls (indices, a < b) that share any.
fn one_date(sets: &[Seen]) -> Figures {
    let mut all: Vec<(u64, usize)> = sets.iter().flat_map(|(i, m)| m.iter().map(move |d| (*d, *i))).collect();
    all.sort_unstable();
    let (mut visitors, mut cross) = (0, 0);
    let mut pairs: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    for group in all.chunk_by(|a, b| a.0 == b.0) {
        visitors += 1;
        if group.len() > 1 {
            cross += 1;
            for (x, a) in group.iter().enumerate() {
                for b in &group[x + 1..] {
                    *pairs.entry((a.1.min(b.1), a.1.max(b.1))).or_default() += 1;
                }
            }
        }
    }
    ((sets.len() as i64, visitors, cross), pairs)
}

/// Recomputes the chain tables from every mall's kept device statuses and publishes them at
/// the root of the chain's outputs (a date no mall has any more is removed). Holds the
/// chain's lock (`_state/lock` at the root; each mall has its own).
pub fn recompute(root: &Location, malls: &[String]) -> Result<ChainReport> {
    let lock = Lock::acquire(root)?;
    // Pairs are named in id order (mall_a < mall_b).
    let mut malls = malls.to_vec();
    malls.sort();
    let all = Malls::load(root, &malls)?;
    let dates: Vec<(&i32, &Vec<usize>)> = all.by_date.iter().collect();
    let daily = crate::schema::get(DAILY)?;
    let overlap = crate::schema::get(OVERLAP)?;
    // A date at a time (in parallel): memory holds the device lists of the dates in flight,
    // never the chain's history.
    let device_days = crate::par::map(&dates, |(d, with_data)| {
        let sets: Vec<Seen> =
            with_data.iter().map(|i| Ok((*i, all.devices(&malls, *i, **d)?))).collect::<Result<_>>()?;
        let device_days: usize = sets.iter().map(|(_, m)| m.len()).sum();
        let ((n, visitors, cross), pairs) = one_date(&sets);
        drop(sets);
        let date = days_to_date(**d);
        let day = Series::new("date".into(), [**d]).cast(&DataType::Date)?;
        let df = DataFrame::new(
            1,
            vec![
                day.into_column(),
                Column::new("malls".into(), [n]),
                Column::new("visitors".into(), [visitors]),
                Column::new("cross_mall_visitors".into(), [cross]),
            ],
        )?;
        publish_partition(root, daily, date, df, "UTC", None)?;
        let (a, b): (Vec<&str>, Vec<&str>) =
            pairs.keys().map(|(a, b)| (malls[*a].as_str(), malls[*b].as_str())).unzip();
        let df = DataFrame::new(
            a.len(),
            vec![
                Series::new("date".into(), vec![**d; a.len()]).cast(&DataType::Date)?.into_column(),
                Column::new("mall_a".into(), a),
                Column::new("mall_b".into(), b),
                Column::new("shared_visitors".into(), pairs.values().copied().collect::<Vec<i64>>()),
            ],
        )?;
        publish_partition(root, overlap, date, df, "UTC", None)?;
        Ok(device_days)
    })?;
    for table in [DAILY, OVERLAP] {
        for gone in published_dates(root, table)?
            .into_iter()
            .filter(|d| !all.by_date.contains_key(&crate::timeutil::date_to_days(*d)))
        {
            root.delete(&partition_rel(table, gone))?;
        }
    }
    lock.release()?;
    Ok(ChainReport {
        malls_with_state: all.states.iter().filter(|m| m.as_ref().is_some_and(|m| !m.days().is_empty())).count(),
        dates: all.by_date.len(),
        device_days: device_days.iter().sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_date_counts_devices_across_malls_and_pairs() {
        // mall 0: 1 2 3; mall 1: 2 3 4; mall 2: 3 5
        let sets = vec![(0, vec![1, 2, 3]), (1, vec![2, 3, 4]), (2, vec![3, 5])];
        let ((n, visitors, cross), pairs) = one_date(&sets);
        // distinct 1..=5; in two or more malls: 2 (0,1) and 3 (0,1,2)
        assert_eq!((n, visitors, cross), (3, 5, 2));
        let want: BTreeMap<(usize, usize), i64> = [((0, 1), 2), ((0, 2), 1), ((1, 2), 1)].into_iter().collect();
        assert_eq!(pairs, want);
        assert_eq!(one_date(&[]), ((0, 0, 0), BTreeMap::new()));
    }

    #[test]
    fn for_each_mall_isolates_failures_and_keeps_order() {
        let plan = crate::config::Plan {
            probes: Location::memory(),
            dims: None,
            sales: None,
            out: Location::memory(),
            settings: Default::default(),
            lookback_days: None,
            export: None,
        };
        let malls: Vec<MallPlan> = (0..5).map(|i| MallPlan { id: Some(format!("m{i}")), plan: plan.clone() }).collect();
        for jobs in [1, 2, 8] {
            let got = for_each_mall(&malls, jobs, |m| match m.id.as_deref() {
                Some("m2") => anyhow::bail!("bad file"),
                Some("m3") => panic!("boom"),
                id => Ok(id.unwrap_or_default().to_string()),
            });
            let got: Vec<String> = got.into_iter().map(|r| r.unwrap_or_else(|e| format!("err {e}"))).collect();
            assert_eq!(got[..3], ["m0", "m1", "err bad file"]);
            assert!(got[3].starts_with("err internal error"), "{got:?}");
            assert_eq!(got[4], "m4");
        }
    }
}
