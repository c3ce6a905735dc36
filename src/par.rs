//! Parallel loops whose bodies call Polars: the only place footfall runs its own work in
//! parallel (the generator, which never calls Polars, uses rayon).
//!
//! Why not rayon: Polars runs its work on its own rayon pool. A worker of *another* rayon pool
//! that calls into Polars waits for it with rayon's work-stealing wait, running other queued
//! jobs of its own pool on the same stack meanwhile. With one job per probe file, every waiting
//! worker starts the next file's parse on top of the one in progress, so the stack grows with
//! the number of files (it overflowed past ~850 files). A plain thread blocks instead of
//! stealing: each worker here holds one item at a time, and its stack use is independent of
//! how many items there are.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Result;

/// Stack of each worker thread: room for Polars' planning and readers, whatever the input.
const STACK: usize = 16 << 20;

/// Worker threads for `n` items: one per core, at most `n`.
pub fn workers(n: usize) -> usize {
    std::thread::available_parallelism().map_or(2, |p| p.get()).min(n).max(1)
}

/// Runs `f(i)` for every `i` in `0..n` on a few plain threads and returns the results in
/// order. After the first error no new item is started, and the first error (by index) is
/// returned.
fn run_indexed<R: Send>(n: usize, f: impl Fn(usize) -> Result<R> + Sync) -> Result<Vec<R>> {
    let results: Vec<Mutex<Option<Result<R>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..workers(n) {
            std::thread::Builder::new()
                .name("footfall-worker".into())
                .stack_size(STACK)
                .spawn_scoped(scope, || loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = f(i);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                })
                .expect("cannot start a worker thread");
        }
    });
    let mut out = Vec::with_capacity(n);
    for r in results {
        match r.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(r) => out.push(r?),
            // Not started because an earlier item failed; that error was returned above.
            None => unreachable!("an item was skipped without an earlier error"),
        }
    }
    Ok(out)
}

/// `f` over every item of a slice, in parallel; results in input order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    run_indexed(items.len(), |i| f(&items[i]))
}

/// `f` over owned items, in parallel; results in input order.
pub fn map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    run_indexed(slots.len(), |i| {
        let item = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take().expect("each item is taken once");
        f(item)
    })
}

/// Runs two closures in parallel and returns both results.
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> Result<A> + Send,
    b: impl FnOnce() -> Result<B> + Send,
) -> Result<(A, B)> {
    let (ra, rb) = std::thread::scope(|scope| {
        let hb = std::thread::Builder::new()
            .name("footfall-worker".into())
            .stack_size(STACK)
            .spawn_scoped(scope, b)
            .expect("cannot start a worker thread");
        let ra = a();
        (ra, hb.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    });
    Ok((ra?, rb?))
}

/// Sorts `v` by `cmp` on rayon's pool when it is large (stable, so already sorted runs cost
/// little). Safe here, unlike a loop over probe files: `cmp` is a leaf that never calls Polars,
/// so a waiting worker can only steal other comparisons.
pub fn sort_by<T: Send>(v: &mut [T], cmp: impl Fn(&T, &T) -> std::cmp::Ordering + Sync) {
    use rayon::slice::ParallelSliceMut;
    if v.len() > 1 << 20 {
        v.par_sort_by(cmp);
    } else {
        v.sort_by(cmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_input_order() {
        let v: Vec<u64> = (0..1000).collect();
        let out = map(&v, |x| Ok(x * 2)).unwrap();
        assert_eq!(out, (0..1000).map(|x| x * 2).collect::<Vec<_>>());
        let out = map_owned(v, |x| Ok(x + 1)).unwrap();
        assert_eq!(out, (1..1001).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_is_returned_and_stops_new_items() {
        let started = AtomicUsize::new(0);
        let v: Vec<u32> = (0..10_000).collect();
        let err = map(&v, |x| {
            started.fetch_add(1, Ordering::Relaxed);
            if *x == 3 {
                anyhow::bail!("item {x} failed")
            }
            Ok(*x)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "item 3 failed");
        assert!(started.load(Ordering::Relaxed) < 10_000, "kept starting items after the error");
    }

    #[test]
    fn polars_inside_the_loop_does_not_nest() {
        // Each item collects a Polars query (which runs on Polars' own pool) while a
        // thread-local depth counts the items in progress on this thread: a worker that
        // started another item while waiting for Polars (rayon's work-stealing wait) would
        // see a depth of 2. Every item must run alone on a worker thread, results in order.
        use polars::prelude::*;
        use std::cell::Cell;
        thread_local!(static DEPTH: Cell<usize> = const { Cell::new(0) });
        let deepest = AtomicUsize::new(0);
        let v: Vec<i64> = (0..500).collect();
        let out = map(&v, |x| {
            let depth = DEPTH.with(|d| {
                d.set(d.get() + 1);
                d.get()
            });
            deepest.fetch_max(depth, Ordering::Relaxed);
            assert_eq!(std::thread::current().name(), Some("footfall-worker"));
            let df = df!("a" => [*x, *x + 1, *x + 2])?;
            let s = df.lazy().select([col("a").sum()]).collect()?;
            DEPTH.with(|d| d.set(d.get() - 1));
            Ok(s.column("a")?.i64()?.get(0).unwrap())
        })
        .unwrap();
        assert_eq!(deepest.load(Ordering::Relaxed), 1, "an item started inside another on one thread");
        assert_eq!(out, (0..500i64).map(|x| 3 * x + 3).collect::<Vec<_>>());
    }

    #[test]
    fn rayon_loops_only_in_the_generator() {
        // The rule above, over the source: rayon's parallel loops appear only in the
        // generator, and the generator never calls Polars.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src.clone()];
        let mut checked = 0;
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                let rel = p.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
                checked += 1;
                let uses_rayon = ["use rayon", "rayon::", "par_iter(", "into_par_iter(", "par_bridge("]
                    .iter()
                    .any(|pat| text.lines().any(|l| !l.trim_start().starts_with("//") && l.contains(pat)));
                if rel == "generate.rs" {
                    assert!(!text.contains("polars"), "src/generate.rs must not call Polars (it uses rayon)");
                } else if rel != "par.rs" {
                    assert!(!uses_rayon, "src/{rel} runs a rayon loop: use crate::par instead");
                }
            }
        }
        assert!(checked > 20, "only {checked} source files found");
    }

    #[test]
    fn join_returns_both() {
        let (a, b) = join(|| Ok(1), || Ok("b")).unwrap();
        assert_eq!((a, b), (1, "b"));
        assert!(join(|| Ok(1), || -> Result<()> { anyhow::bail!("no") }).is_err());
    }
}
