//! The output location's exclusive lock: a second `run`/`update` on the same outputs fails
//! fast, and no two processes ever both hold it — also not when both find a lock left behind
//! by a dead process.
//!
//! Two mechanisms, chosen by where the outputs live, neither reading process tables or host
//! names (which only work on one OS and one machine):
//! - **Local directories**: an OS file lock (`flock`) on `_state/lock.flock`, a file that is
//!   never deleted (deleting a locked file lets a second process lock the orphaned inode). The
//!   kernel releases it when the holder dies, so there is no staleness to judge.
//! - **Object stores** (S3, GCS, Azure, memory): a *lease* object `_state/lock` created with a
//!   conditional PUT (if absent), renewed by a heartbeat thread every third of its TTL with a
//!   compare-and-swap PUT on the exact version it wrote. A lease whose expiry has passed is taken
//!   over with the same compare-and-swap on the version seen: of two processes racing for it,
//!   one's swap succeeds and the other's fails. A holder whose renewal fails (taken over after a
//!   long stall) knows it: [`Lock::ensure_held`] fails before the manifest commit. The lease
//!   lasts `[storage] lock_lease` (60 s): a holder that stopped renewing for that long is
//!   presumed dead, so after a run that died with the store unreachable the next waits that long.
//!
//! In both cases `_state/lock` holds who holds the lock (pid, host, since), for messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use object_store::UpdateVersion;
use serde::{Deserialize, Serialize};

use crate::store::Location;

const LOCK: &str = "_state/lock";
const FLOCK: &str = "_state/lock.flock";

#[derive(Serialize, Deserialize)]
struct LockInfo {
    pid: u32,
    host: String,
    started_at: i64,
    expires_at: i64,
}

/// This machine's name, for messages only.
fn host() -> String {
    let mut buf = [0u8; 256];
    #[cfg(unix)]
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is given.
    unsafe {
        if libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) == 0 {
            let n = buf.iter().position(|b| *b == 0).unwrap_or(0);
            if n > 0 {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
    }
    "unknown".into()
}

impl LockInfo {
    fn now(ttl: i64) -> LockInfo {
        let now = chrono::Utc::now().timestamp();
        LockInfo { pid: std::process::id(), host: host(), started_at: now, expires_at: now + ttl }
    }

    fn bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("lock info serializes"))
    }
}

/// Exclusive lock on an output location; released on drop.
pub struct Lock {
    out: Location,
    held: Held,
    released: bool,
}

enum Held {
    /// The locked file, kept open: the lock lasts as long as the handle.
    File {
        _handle: std::fs::File,
    },
    Lease(Lease),
}

struct Lease {
    lost: Arc<AtomicBool>,
    stop: std::sync::mpsc::Sender<()>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

fn locked_by(out: &Location, info: Option<&[u8]>) -> anyhow::Error {
    match info.and_then(|b| serde_json::from_slice::<LockInfo>(b).ok()) {
        Some(h) => anyhow::anyhow!(
            "{} is locked by another footfall run (pid {} on {}, since {}); try again later",
            out.display,
            h.pid,
            h.host,
            chrono::DateTime::from_timestamp(h.started_at, 0).map(|d| d.to_rfc3339()).unwrap_or_default(),
        ),
        None => anyhow::anyhow!("{} is locked by another footfall run; try again later", out.display),
    }
}

impl Lock {
    /// Takes the lock or fails at once.
    pub fn acquire(out: &Location) -> Result<Lock> {
        Self::acquire_with_ttl(out, out.lease_secs)
    }

    /// [`Lock::acquire`] with a lease TTL (object stores; tests use short ones).
    pub fn acquire_with_ttl(out: &Location, ttl: i64) -> Result<Lock> {
        let held = match out.local_path(FLOCK) {
            Some(path) => Held::File { _handle: lock_file(out, &path)? },
            None => Held::Lease(take_lease(out, ttl)?),
        };
        Ok(Lock { out: out.clone(), held, released: false })
    }

    /// Fails if the lease was lost (another process took it over after this one stopped
    /// renewing): the caller must not commit.
    pub fn ensure_held(&self) -> Result<()> {
        match &self.held {
            Held::Lease(l) if l.lost.load(Ordering::SeqCst) => {
                bail!("lost the lock on {} (not renewed in time; another run took it over)", self.out.display)
            }
            _ => Ok(()),
        }
    }

    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.unlock()
    }

    fn unlock(&mut self) -> Result<()> {
        match &mut self.held {
            Held::File { .. } => self.out.delete(LOCK),
            Held::Lease(l) => {
                let _ = l.stop.send(());
                if let Some(t) = l.heartbeat.take() {
                    let _ = t.join();
                }
                // A lost lease belongs to its new holder.
                if l.lost.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    self.out.delete(LOCK)
                }
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.unlock();
        }
    }
}

fn lock_file(out: &Location, path: &std::path::Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", out.show("_state")))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(locked_by(out, out.get_opt(LOCK)?.as_deref())),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    if out.get_opt(LOCK)?.is_some() {
        eprintln!("footfall: taking over a stale lock {} (its process is gone)", out.show(LOCK));
    }
    out.put(LOCK, LockInfo::now(0).bytes())?;
    Ok(file)
}

fn take_lease(out: &Location, ttl: i64) -> Result<Lease> {
    let mut version = None;
    for _ in 0..3 {
        if let Some(v) = out.create_versioned(LOCK, LockInfo::now(ttl).bytes())? {
            version = Some(v);
            break;
        }
        let Some((seen, seen_version)) = out.get_versioned(LOCK)? else { continue };
        let expired =
            serde_json::from_slice::<LockInfo>(&seen).map_or(true, |h| h.expires_at < chrono::Utc::now().timestamp());
        if !expired {
            return Err(locked_by(out, Some(&seen)));
        }
        match out.put_if_version(LOCK, LockInfo::now(ttl).bytes(), seen_version) {
            Ok(Some(v)) => {
                eprintln!("footfall: taking over an expired lock {}", out.show(LOCK));
                version = Some(v);
                break;
            }
            // Another process took it over first.
            Ok(None) => return Err(locked_by(out, out.get_opt(LOCK)?.as_deref())),
            Err(e) => {
                return Err(e).context(format!(
                    "cannot take over the expired lock {}; delete it if no footfall run is using these outputs",
                    out.show(LOCK)
                ))
            }
        }
    }
    let Some(version) = version else { bail!("could not take the lock {}", out.show(LOCK)) };
    let lost = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (o, l) = (out.clone(), lost.clone());
    let every = std::time::Duration::from_millis((ttl.max(1) as u64) * 1000 / 3);
    let heartbeat = std::thread::Builder::new()
        .name("footfall-lock".into())
        .spawn(move || renew(&o, version, ttl, every, &l, &stopped))
        .context("cannot start the lock's heartbeat")?;
    Ok(Lease { lost, stop, heartbeat: Some(heartbeat) })
}

/// The heartbeat: renews the lease on the exact version last written until told to stop; a
/// failed swap means the lease was taken over.
fn renew(
    out: &Location,
    mut version: UpdateVersion,
    ttl: i64,
    every: std::time::Duration,
    lost: &AtomicBool,
    stopped: &std::sync::mpsc::Receiver<()>,
) {
    let mut valid_until = chrono::Utc::now().timestamp() + ttl;
    loop {
        match stopped.recv_timeout(every) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        match out.put_if_version(LOCK, LockInfo::now(ttl).bytes(), version.clone()) {
            Ok(Some(v)) => {
                version = v;
                valid_until = chrono::Utc::now().timestamp() + ttl;
            }
            Ok(None) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A transient storage error: retry next beat, unless the lease ran out meanwhile.
            Err(_) if chrono::Utc::now().timestamp() < valid_until => {}
            Err(_) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expired_lease(out: &Location) {
        let old = LockInfo { pid: 1, host: "gone".into(), started_at: 0, expires_at: 1 };
        out.put(LOCK, old.bytes()).unwrap();
    }

    /// Many threads race for one expired lease: exactly one takes it, every other one is told
    /// the outputs are locked. Repeated to give the race many chances.
    #[test]
    fn racing_for_an_expired_lease_grants_it_once() {
        for round in 0..50 {
            let out = Location::memory();
            expired_lease(&out);
            let barrier = std::sync::Barrier::new(8);
            let results: Vec<Result<Lock>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            Lock::acquire_with_ttl(&out, 60)
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let held = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(held, 1, "round {round}: {held} holders");
            for r in &results {
                if let Err(e) = r {
                    assert!(e.to_string().contains("locked by another footfall run"), "{e:#}");
                }
            }
        }
    }

    #[test]
    fn a_live_lease_is_renewed_and_refused_to_others() {
        let out = Location::memory();
        let lock = Lock::acquire_with_ttl(&out, 3).unwrap();
        // Past the first TTL the heartbeat has renewed it: still refused, still held.
        std::thread::sleep(std::time::Duration::from_millis(3500));
        let e = Lock::acquire_with_ttl(&out, 3).err().expect("a renewed lease is not expired");
        assert!(e.to_string().contains("locked by another footfall run"), "{e:#}");
        lock.ensure_held().unwrap();
        lock.release().unwrap();
        assert!(out.get_opt(LOCK).unwrap().is_none(), "released");
        Lock::acquire_with_ttl(&out, 3).unwrap().release().unwrap();
    }

    #[test]
    fn a_lease_taken_over_is_known_lost() {
        let out = Location::memory();
        let lock = Lock::acquire_with_ttl(&out, 3).unwrap();
        // Another process decides the holder is gone and takes the lease (a stalled holder).
        out.put(LOCK, LockInfo::now(60).bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let e = lock.ensure_held().unwrap_err();
        assert!(e.to_string().contains("lost the lock"), "{e:#}");
        lock.release().unwrap();
        assert!(out.get_opt(LOCK).unwrap().is_some(), "the new holder's lease stays");
    }

    #[test]
    fn a_local_lock_is_exclusive_and_released_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let out = Location::local(dir.path()).unwrap();
        let lock = Lock::acquire(&out).unwrap();
        let e = Lock::acquire(&out).err().expect("second holder");
        assert!(e.to_string().contains("locked by another footfall run") && e.to_string().contains("pid"), "{e:#}");
        drop(lock);
        assert!(!dir.path().join(LOCK).exists());
        assert!(dir.path().join(FLOCK).exists(), "the locked file is never deleted");
        Lock::acquire(&out).unwrap().release().unwrap();
    }
}
