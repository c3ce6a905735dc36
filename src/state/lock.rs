//! The output location's exclusive lock, taken with a conditional PUT so that two machines
//! sharing a bucket cannot both hold it; a second `run`/`update` fails fast.

use anyhow::{bail, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::store::Location;

/// Exclusive lock on an output location, created with a conditional PUT so that two
/// machines sharing a bucket cannot both hold it.
pub struct Lock {
    out: Location,
    released: bool,
}

const LOCK: &str = "_state/lock";

#[derive(Serialize, Deserialize)]
struct LockInfo {
    pid: u32,
    host: String,
    started_at: i64,
    expires_at: i64,
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Lock {
    /// Takes the lock or fails at once. A lock whose holder is gone (same host, dead pid) or
    /// whose expiry has passed is taken over.
    pub fn acquire(out: &Location, ttl_secs: i64) -> Result<Lock> {
        let now = chrono::Utc::now().timestamp();
        let info = LockInfo { pid: std::process::id(), host: host(), started_at: now, expires_at: now + ttl_secs };
        let body = Bytes::from(serde_json::to_vec(&info)?);
        for _ in 0..2 {
            if out.put_if_absent(LOCK, body.clone())? {
                return Ok(Lock { out: out.clone(), released: false });
            }
            let held = match out.get_opt(LOCK)? {
                None => continue,
                Some(b) => serde_json::from_slice::<LockInfo>(&b).ok(),
            };
            let stale = match &held {
                None => true,
                Some(h) => h.expires_at < now || (h.host == info.host && !pid_alive(h.pid)),
            };
            if stale {
                eprintln!("footfall: taking over a stale lock {}", out.show(LOCK));
                out.delete(LOCK)?;
                continue;
            }
            let h = held.unwrap();
            bail!(
                "{} is locked by another footfall run (pid {} on {}, since {}); try again later, or delete {} if that process is gone",
                out.display,
                h.pid,
                h.host,
                chrono::DateTime::from_timestamp(h.started_at, 0).map(|d| d.to_rfc3339()).unwrap_or_default(),
                out.show(LOCK)
            );
        }
        bail!("could not take the lock {}", out.show(LOCK))
    }

    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.out.delete(LOCK)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.out.delete(LOCK);
        }
    }
}
