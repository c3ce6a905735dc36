//! Every byte footfall reads or writes goes through `object_store`: local paths and
//! `s3://`, `gs://`, `az://`, `file://` URLs share one code path.
//!
//! The engine is synchronous (Polars, and plain worker threads from `par`); this module owns the one tokio runtime and
//! offers blocking calls. Writes are single PUTs, which are atomic on every backend (the local
//! backend writes a temporary file and renames it), so a reader never sees half an object.

use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::bail_usage;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// Runs a future to completion on the I/O runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// A directory-like place: a store and a prefix inside it.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// What the user wrote (resolved), for messages.
    pub display: String,
    /// Set for local directories.
    pub local: Option<PathBuf>,
    /// Object reads (get or ranged get) through this location and its children.
    pub reads: Arc<std::sync::atomic::AtomicU64>,
    /// Seconds a lock lease lasts without renewal (object stores; see `state::Lock`).
    pub lease_secs: i64,
    /// One mall of a chain's outputs ([`Location::for_mall`]): its segment `mall=<id>`.
    pub mall: Option<String>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// Object-storage settings (`[storage]`); anything unset comes from the standard
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, and their GCS/Azure equivalents). Secrets are never
/// config keys here, so they cannot end up in a config file, a message or the state.
#[derive(Debug, Clone)]
pub struct StorageOpts {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: Option<bool>,
    pub retries: usize,
    pub retry_timeout: std::time::Duration,
    /// How long the lock lease of a run on object storage lasts without renewal.
    pub lock_lease: std::time::Duration,
}

impl Default for StorageOpts {
    fn default() -> Self {
        StorageOpts {
            endpoint: None,
            region: None,
            allow_http: None,
            retries: 4,
            retry_timeout: std::time::Duration::from_secs(60),
            lock_lease: std::time::Duration::from_secs(60),
        }
    }
}

/// A local directory's listing with one `stat` per file, made without object_store: its
/// local walk stats every entry four times by full path, which was most of what an hourly
/// update's time grows by with history (25 ms for a month of hourly files). The same entries,
/// sizes, times and e-tags as object_store's listing (its e-tag is inode-mtime-size in hex);
/// `None`, and object_store lists instead, on a symlink or on a name it would percent-encode.
#[cfg(unix)]
fn list_local(root: &FsPath, rel: &str) -> Option<Vec<Entry>> {
    let rel = rel.trim_matches('/');
    if !rel.split('/').filter(|p| !p.is_empty()).all(plain) {
        return None;
    }
    let mut out = walk(root.join(rel), rel.to_string(), true, &plain)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Some(out)
}

/// A file or directory name object_store's local store keeps as is (no percent-encoding).
fn plain(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"=._-".contains(&b))
}

/// The file of a local location's object, when its name maps to the same path (see [`plain`]).
fn local_file(root: Option<&FsPath>, rel: &str) -> Option<std::path::PathBuf> {
    let root = root?;
    let rel = rel.trim_matches('/');
    rel.split('/').all(plain).then(|| root.join(rel))
}

/// A local file's entry, with the e-tag object_store's local store gives it.
#[cfg(unix)]
fn local_entry(e: &std::fs::DirEntry, rel: String) -> Option<Entry> {
    let meta = e.metadata().ok()?;
    let modified = meta.modified().ok()?;
    let micros = modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros();
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    Some(Entry {
        rel,
        size: meta.len(),
        e_tag: Some(format!("{inode:x}-{micros:x}-{:x}", meta.len())),
        last_modified: chrono::DateTime::<chrono::Utc>::from(modified).timestamp_millis(),
    })
}

/// One directory's files and its subdirectories', those of the root in parallel (a date
/// directory each below the probes root: listing is most of what an update's planning grows by).
#[cfg(unix)]
fn walk(
    dir: std::path::PathBuf,
    name: String,
    root: bool,
    plain: &(dyn Fn(&str) -> bool + Sync),
) -> Option<Vec<Entry>> {
    LIST.fetch_add(1, Relaxed);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && root => return Some(Vec::new()),
        Err(_) => return None,
    };
    let (mut out, mut dirs) = (Vec::new(), Vec::new());
    for e in entries {
        let e = e.ok()?;
        let file = e.file_name().into_string().ok().filter(|f| plain(f))?;
        let child = if name.is_empty() { file } else { format!("{name}/{file}") };
        let kind = e.file_type().ok()?;
        if kind.is_dir() {
            dirs.push((e.path(), child));
        } else if kind.is_file() {
            out.push(local_entry(&e, child)?);
        } else {
            return None;
        }
    }
    let below = |(d, n): &(std::path::PathBuf, String)| walk(d.clone(), n.clone(), false, plain);
    let below: Option<Vec<Vec<Entry>>> = match root {
        true => crate::par::map(&dirs, |d| Ok(below(d))).ok()?.into_iter().collect(),
        false => dirs.iter().map(below).collect(),
    };
    out.extend(below?.into_iter().flatten());
    Some(out)
}

#[cfg(not(unix))]
fn list_local(_: &FsPath, _: &str) -> Option<Vec<Entry>> {
    None
}

/// Storage requests this process made, by kind (a LIST page counts once per 1,000 keys, as S3
/// pages them; a local directory read counts as one LIST): what `FOOTFALL_TRACE=1` reports, so
/// an update's request count can be compared across history sizes.
pub mod requests {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    pub(super) static GET: AtomicU64 = AtomicU64::new(0);
    pub(super) static PUT: AtomicU64 = AtomicU64::new(0);
    pub(super) static LIST: AtomicU64 = AtomicU64::new(0);
    pub(super) static DELETE: AtomicU64 = AtomicU64::new(0);

    pub(super) fn list_pages(keys: usize) {
        LIST.fetch_add(1 + keys as u64 / 1000, Relaxed);
    }

    /// (gets, puts, lists, deletes) so far.
    pub fn counts() -> [u64; 4] {
        [GET.load(Relaxed), PUT.load(Relaxed), LIST.load(Relaxed), DELETE.load(Relaxed)]
    }
}
use requests::{DELETE, GET, LIST, PUT};
use std::sync::atomic::Ordering::Relaxed;

/// Metadata of one object, relative to a location.
#[derive(Debug, Clone)]
pub struct Entry {
    pub rel: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: i64,
}

impl Location {
    /// Parses a path or URL. `key` names the config key in messages.
    pub fn parse(spec: &str, base: &FsPath, key: &str) -> Result<Location> {
        Self::parse_with(spec, base, key, &StorageOpts::default())
    }

    /// Parses a path or URL with storage settings.
    pub fn parse_with(spec: &str, base: &FsPath, key: &str, opts: &StorageOpts) -> Result<Location> {
        let spec = spec.trim();
        if spec.is_empty() {
            bail_usage!("{key}: empty location");
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            if scheme == "file" {
                let url =
                    url::Url::parse(spec).map_err(|e| crate::error::usage(format!("{key}: bad URL '{spec}': {e}")))?;
                let p = url.to_file_path().map_err(|_| crate::error::usage(format!("{key}: bad file URL '{spec}'")))?;
                return Self::local_for(&p, key);
            }
            let url =
                url::Url::parse(spec).map_err(|e| crate::error::usage(format!("{key}: bad URL '{spec}': {e}")))?;
            let store: Arc<dyn ObjectStore> = match scheme {
                "s3" | "s3a" => {
                    let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(spec).with_retry(retry(opts));
                    if let Some(e) = &opts.endpoint {
                        b = b.with_endpoint(e);
                    }
                    if let Some(r) = &opts.region {
                        b = b.with_region(r);
                    }
                    if let Some(h) = opts.allow_http {
                        b = b.with_allow_http(h);
                    }
                    Arc::new(b.build().map_err(|e| crate::error::usage(format!("{key}: {e}")))?)
                }
                "gs" => Arc::new(
                    object_store::gcp::GoogleCloudStorageBuilder::from_env()
                        .with_url(spec)
                        .with_retry(retry(opts))
                        .build()
                        .map_err(|e| crate::error::usage(format!("{key}: {e}")))?,
                ),
                "az" | "abfs" | "abfss" | "azure" => Arc::new(
                    object_store::azure::MicrosoftAzureBuilder::from_env()
                        .with_url(spec)
                        .with_retry(retry(opts))
                        .build()
                        .map_err(|e| crate::error::usage(format!("{key}: {e}")))?,
                ),
                other => bail_usage!("{key}: unsupported scheme '{other}://' (use s3, gs, az, file or a path)"),
            };
            let prefix = Path::from(url.path().trim_matches('/'));
            return Ok(Location {
                store,
                prefix,
                display: spec.trim_end_matches('/').to_string(),
                local: None,
                reads: Default::default(),
                lease_secs: opts.lock_lease.as_secs() as i64,
                mall: None,
            });
        }
        let p = FsPath::new(spec);
        let p = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        Self::local_for(&p, key)
    }

    /// A local directory: only the output directory is created when missing; anything else
    /// (probes, dimensions, a directory to compare) must exist, so a typo fails loudly instead
    /// of reading an empty dataset.
    fn local_for(dir: &FsPath, key: &str) -> Result<Location> {
        if key != "output.dir" && !dir.is_dir() {
            bail!("{key}: directory {} not found", dir.display());
        }
        Self::local(dir)
    }

    /// A local directory (created if missing, so outputs can be written).
    pub fn local(dir: &FsPath) -> Result<Location> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
        let abs = std::fs::canonicalize(dir).with_context(|| format!("cannot open directory {}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&abs)
            .with_context(|| format!("cannot open directory {}", abs.display()))?;
        Ok(Location {
            store: Arc::new(store),
            prefix: Path::default(),
            display: dir.display().to_string(),
            local: Some(abs),
            reads: Default::default(),
            lease_secs: StorageOpts::default().lock_lease.as_secs() as i64,
            mall: None,
        })
    }

    /// An in-memory store: the whole pipeline without touching the disk (tests, tools).
    pub fn memory() -> Location {
        Location {
            store: Arc::new(object_store::memory::InMemory::new()),
            prefix: Path::default(),
            display: "memory:".into(),
            local: None,
            reads: Default::default(),
            lease_secs: StorageOpts::default().lock_lease.as_secs() as i64,
            mall: None,
        }
    }

    /// A sub-location.
    pub fn child(&self, rel: &str) -> Location {
        let rel = self.mapped(rel);
        Location {
            store: self.store.clone(),
            prefix: self.path_of(&rel),
            display: format!("{}/{}", self.display, rel),
            local: self.local.as_ref().map(|l| l.join(&*rel)),
            reads: self.reads.clone(),
            lease_secs: self.lease_secs,
            mall: None,
        }
    }

    /// One mall's outputs in a chain's: every object `<table>/<rest>` is stored as
    /// `<table>/mall=<id>/<rest>` (and `_state/…` as `_state/mall=<id>/…`), so each table of
    /// the chain is one hive-partitioned dataset while the pipeline writes a mall as it
    /// writes a single mall's outputs.
    pub fn for_mall(&self, id: &str) -> Location {
        Location { mall: Some(format!("mall={id}")), ..self.clone() }
    }

    /// The chain's outputs a mall's are part of (itself for a single mall).
    pub fn root(&self) -> Location {
        Location { mall: None, ..self.clone() }
    }

    /// `rel` as stored: the mall's segment after the first one.
    fn mapped<'a>(&self, rel: &'a str) -> std::borrow::Cow<'a, str> {
        let Some(seg) = &self.mall else { return rel.into() };
        let rel = rel.trim_matches('/');
        if rel.is_empty() {
            return "".into();
        }
        match rel.split_once('/') {
            Some((first, rest)) => format!("{first}/{seg}/{rest}").into(),
            None => format!("{rel}/{seg}").into(),
        }
    }

    /// A stored name back as this location's, `None` for another mall's (or the chain's).
    fn unmapped(&self, rel: String) -> Option<String> {
        let Some(seg) = &self.mall else { return Some(rel) };
        let mut parts = rel.splitn(3, '/');
        let (first, second, rest) = (parts.next()?, parts.next()?, parts.next());
        (second == seg).then(|| match rest {
            Some(rest) => format!("{first}/{rest}"),
            None => first.to_string(),
        })
    }

    /// The local path of `rel` (local directories only).
    pub fn local_path(&self, rel: &str) -> Option<PathBuf> {
        self.local.as_ref().map(|l| l.join(&*self.mapped(rel)))
    }

    fn path(&self, rel: &str) -> Path {
        self.path_of(&self.mapped(rel))
    }

    fn path_of(&self, stored: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in stored.split('/').filter(|p| !p.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    /// Human name of an object, for messages.
    pub fn show(&self, rel: &str) -> String {
        format!("{}/{}", self.display, self.mapped(rel))
    }

    fn rel_of(&self, p: &Path) -> String {
        let full = p.as_ref();
        let pre = self.prefix.as_ref();
        if pre.is_empty() {
            full.to_string()
        } else {
            full.strip_prefix(pre).unwrap_or(full).trim_start_matches('/').to_string()
        }
    }

    /// Every object under the location (recursive), sorted by relative path.
    pub fn list(&self) -> Result<Vec<Entry>> {
        self.list_under("")
    }

    /// Every object under `rel` (recursive), sorted by relative path. A missing prefix is empty.
    pub fn list_under(&self, rel: &str) -> Result<Vec<Entry>> {
        let stored = self.mapped(rel);
        let listed = match self.local.as_deref().and_then(|dir| list_local(dir, &stored)) {
            Some(out) => out,
            None => {
                let prefix = self.path(rel);
                let metas: Vec<ObjectMeta> = block_on(self.store.list(Some(&prefix)).try_collect())
                    .with_context(|| format!("cannot list {}", self.show(rel)))?;
                requests::list_pages(metas.len());
                let mut out: Vec<Entry> = metas
                    .into_iter()
                    .map(|m| Entry {
                        rel: self.rel_of(&m.location),
                        size: m.size,
                        e_tag: m.e_tag,
                        last_modified: m.last_modified.timestamp_millis(),
                    })
                    .collect();
                out.sort_by(|a, b| a.rel.cmp(&b.rel));
                out
            }
        };
        if self.mall.is_none() {
            return Ok(listed);
        }
        let mut out: Vec<Entry> =
            listed.into_iter().filter_map(|e| Some(Entry { rel: self.unmapped(e.rel.clone())?, ..e })).collect();
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    fn count_read(&self) {
        self.reads.fetch_add(1, Relaxed);
        GET.fetch_add(1, Relaxed);
    }

    /// Names of the immediate sub-"directories" under `rel` (common prefixes).
    pub fn list_dirs(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self.list_level(rel)?.0)
    }

    /// One level under `rel`: the sub-"directories"' names (common prefixes) and the objects
    /// directly there, both sorted.
    pub fn list_level(&self, rel: &str) -> Result<(Vec<String>, Vec<Entry>)> {
        // A local directory is read once: object_store's local listing with a delimiter opens
        // and stats every subdirectory (a year of date directories below the probes root).
        let stored = self.mapped(rel);
        let dir = match stored.trim_matches('/') {
            "" => self.local.clone(),
            rel => local_file(self.local.as_deref(), rel),
        };
        #[cfg(unix)]
        if let Some(dir) = dir {
            LIST.fetch_add(1, Relaxed);
            let prefix = rel.trim_matches('/');
            let names = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .map(|e| {
                        let e = e?;
                        let (kind, name) = (e.file_type()?, e.file_name().into_string().ok());
                        Ok((kind.is_dir(), kind.is_file(), name, e))
                    })
                    .collect::<std::io::Result<Vec<_>>>(),
                // As object_store: nothing under a file or a missing name.
                Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                    Ok(vec![])
                }
                Err(e) => Err(e),
            };
            let names = names.with_context(|| format!("cannot list {}", self.show(rel)))?;
            // Names object_store would percent-encode are left to it (see `plain`).
            if names.iter().filter(|n| n.0 || n.1).all(|n| n.2.as_deref().is_some_and(plain)) {
                let (mut dirs, mut files) = (Vec::new(), Vec::new());
                for (is_dir, is_file, name, e) in names {
                    let Some(name) = name.filter(|_| is_dir || is_file) else { continue };
                    if is_dir {
                        dirs.push(name);
                    } else {
                        let child = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
                        match local_entry(&e, child) {
                            Some(entry) => files.push(entry),
                            None => anyhow::bail!("cannot list {}: a file vanished while listed", self.show(rel)),
                        }
                    }
                }
                dirs.sort();
                files.sort_by(|a, b| a.rel.cmp(&b.rel));
                return Ok((dirs, files));
            }
        }
        #[cfg(not(unix))]
        let _ = dir;
        let prefix = self.path(rel);
        let r = block_on(self.store.list_with_delimiter(Some(&prefix)))
            .with_context(|| format!("cannot list {}", self.show(rel)))?;
        requests::list_pages(r.common_prefixes.len() + r.objects.len());
        let mut dirs: Vec<String> = r.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect();
        dirs.sort();
        let mut files: Vec<Entry> = r
            .objects
            .into_iter()
            .filter_map(|m| {
                let (at, name) = (rel.trim_matches('/'), m.location.filename()?);
                let rel = if at.is_empty() { name.to_string() } else { format!("{at}/{name}") };
                Some(Entry { rel, size: m.size, e_tag: m.e_tag, last_modified: m.last_modified.timestamp_millis() })
            })
            .collect();
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok((dirs, files))
    }

    pub fn get(&self, rel: &str) -> Result<Bytes> {
        match self.get_opt(rel)? {
            Some(b) => Ok(b),
            None => Err(anyhow::Error::new(object_store::Error::NotFound {
                path: self.show(rel),
                source: "no such object".into(),
            }))
            .with_context(|| format!("cannot read {}", self.show(rel))),
        }
    }

    /// Reads an object, `None` if it does not exist.
    pub fn get_opt(&self, rel: &str) -> Result<Option<Bytes>> {
        self.count_read();
        // A local file is read directly: object_store's local reads go through a blocking
        // task and a chunked stream, ~8 times slower for the 15 MB an update reads after a year.
        if let Some(file) = local_file(self.local.as_deref(), &self.mapped(rel)) {
            return match std::fs::read(&file) {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot read {}", self.show(rel))),
            };
        }
        let p = self.path(rel);
        match block_on(async { self.store.get(&p).await?.bytes().await }) {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.show(rel))),
        }
    }

    /// Reads an object in place where the store allows it: a local file is memory-mapped, so
    /// a reader that looks up a few rows of a large object touches only their pages. Safe
    /// because objects are never modified in place: a put replaces a file by renaming a new
    /// one over it, and the mapping keeps the old one.
    pub fn get_mapped(&self, rel: &str) -> Result<Option<Bytes>> {
        let Some(file) = local_file(self.local.as_deref(), &self.mapped(rel)) else { return self.get_opt(rel) };
        self.count_read();
        let f = match std::fs::File::open(&file) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.show(rel))),
        };
        // SAFETY: the file is never written in place (above); a truncation by another program
        // would be a damaged state, as a damaged read would.
        let map = unsafe { memmap2::Mmap::map(&f) }.with_context(|| format!("cannot read {}", self.show(rel)))?;
        Ok(Some(Bytes::from_owner(map)))
    }

    pub fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        self.count_read();
        let p = self.path(rel);
        block_on(self.store.get_range(&p, range)).with_context(|| format!("cannot read {}", self.show(rel)))
    }

    /// Writes an object with one PUT (atomic replace).
    pub fn put(&self, rel: &str, data: Bytes) -> Result<()> {
        PUT.fetch_add(1, Relaxed);
        let p = self.path(rel);
        block_on(self.store.put(&p, PutPayload::from(data)))
            .with_context(|| format!("cannot write {}", self.show(rel)))?;
        Ok(())
    }

    /// Reads an object with the version a conditional write must name; `None` if it does not exist.
    pub fn get_versioned(&self, rel: &str) -> Result<Option<(Bytes, object_store::UpdateVersion)>> {
        self.count_read();
        let p = self.path(rel);
        let got = block_on(async {
            let r = self.store.get(&p).await?;
            let version = object_store::UpdateVersion { e_tag: r.meta.e_tag.clone(), version: r.meta.version.clone() };
            Ok::<_, object_store::Error>((r.bytes().await?, version))
        });
        match got {
            Ok(v) => Ok(Some(v)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.show(rel))),
        }
    }

    /// Replaces an object only if it is still at `version` (compare-and-swap). `Ok(Some(new
    /// version))` on success, `Ok(None)` when it changed or vanished meanwhile; stores without
    /// conditional updates (the local file system) are an error.
    pub fn put_if_version(
        &self,
        rel: &str,
        data: Bytes,
        version: object_store::UpdateVersion,
    ) -> Result<Option<object_store::UpdateVersion>> {
        PUT.fetch_add(1, Relaxed);
        let p = self.path(rel);
        let opts = PutOptions { mode: PutMode::Update(version), ..Default::default() };
        match block_on(self.store.put_opts(&p, PutPayload::from(data), opts)) {
            Ok(r) => Ok(Some(object_store::UpdateVersion { e_tag: r.e_tag, version: r.version })),
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot update {}", self.show(rel))),
        }
    }

    /// Creates an object only if it does not exist; its version on success.
    pub fn create_versioned(&self, rel: &str, data: Bytes) -> Result<Option<object_store::UpdateVersion>> {
        PUT.fetch_add(1, Relaxed);
        let p = self.path(rel);
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match block_on(self.store.put_opts(&p, PutPayload::from(data), opts)) {
            Ok(r) => Ok(Some(object_store::UpdateVersion { e_tag: r.e_tag, version: r.version })),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot create {}", self.show(rel))),
        }
    }

    /// Deletes an object; a missing one is fine.
    pub fn delete(&self, rel: &str) -> Result<()> {
        DELETE.fetch_add(1, Relaxed);
        let p = self.path(rel);
        match block_on(self.store.delete(&p)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot delete {}", self.show(rel))),
        }
    }

    /// Deletes everything under `rel`.
    pub fn delete_under(&self, rel: &str) -> Result<()> {
        for e in self.list_under(rel)? {
            self.delete(&e.rel)?;
        }
        Ok(())
    }
}

fn retry(opts: &StorageOpts) -> object_store::RetryConfig {
    object_store::RetryConfig { max_retries: opts.retries, retry_timeout: opts.retry_timeout, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(loc: &Location, rel: &str) -> Vec<(String, u64, Option<String>, i64)> {
        let out = loc.list_under(rel).unwrap();
        out.into_iter().map(|e| (e.rel, e.size, e.e_tag, e.last_modified)).collect()
    }

    #[test]
    fn local_listing_equals_object_stores() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path()).unwrap();
        for (rel, n) in [
            ("date=2026-03-01/hour=00/part-0.parquet", 10),
            ("date=2026-03-01/hour=01/a.parquet", 0),
            ("date=2026-03-02/hour=00/b_c-1.parquet", 3),
            ("top.json", 7),
            ("_state/gen-1/x.parquet", 5),
        ] {
            loc.put(rel, Bytes::from(vec![7u8; n])).unwrap();
        }
        let mut object_store = loc.clone();
        object_store.local = None;
        for rel in ["", "date=2026-03-01", "date=2026-03-01/hour=01", "_state", "missing", "date=2026-03-09/x"] {
            assert!(list_local(dir.path(), rel).is_some(), "{rel}");
            assert_eq!(listed(&loc, rel), listed(&object_store, rel), "{rel}");
        }
        assert_eq!(listed(&loc, "").len(), 5);
        let level = |l: &Location, rel: &str| {
            let (dirs, files) = l.list_level(rel).unwrap();
            (dirs, files.into_iter().map(|e| (e.rel, e.size, e.e_tag, e.last_modified)).collect::<Vec<_>>())
        };
        for rel in ["", "date=2026-03-01", "date=2026-03-01/hour=01", "_state", "missing", "top.json"] {
            assert_eq!(loc.list_dirs(rel).unwrap(), object_store.list_dirs(rel).unwrap(), "{rel}");
            assert_eq!(level(&loc, rel), level(&object_store, rel), "{rel}");
        }
        assert_eq!(loc.list_dirs("").unwrap(), ["_state", "date=2026-03-01", "date=2026-03-02"]);
        let (_, root_files) = level(&loc, "");
        assert_eq!(root_files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["top.json"]);
        let (_, hour_files) = level(&loc, "date=2026-03-01/hour=01");
        assert_eq!(hour_files, listed(&loc, "date=2026-03-01/hour=01"));
        // A name object_store would encode: it lists.
        std::fs::write(dir.path().join("date=2026-03-01/with space.parquet"), b"x").unwrap();
        assert!(list_local(dir.path(), "").is_none());
        assert_eq!(listed(&loc, "").len(), 6);
    }

    #[test]
    fn a_malls_objects_sit_under_its_segment_and_list_as_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = Location::local(dir.path()).unwrap();
        let east = root.for_mall("east");
        east.put("t/date=2026-03-01/part-0.parquet", Bytes::from_static(b"e")).unwrap();
        east.put("_state/manifest.json", Bytes::from_static(b"m")).unwrap();
        root.for_mall("west").put("t/date=2026-03-01/part-0.parquet", Bytes::from_static(b"w")).unwrap();
        root.put("c/date=2026-03-01/part-0.parquet", Bytes::from_static(b"c")).unwrap();
        assert!(dir.path().join("t/mall=east/date=2026-03-01/part-0.parquet").is_file());
        assert!(dir.path().join("_state/mall=east/manifest.json").is_file());
        let mut remote = east.clone();
        remote.local = None;
        for loc in [&east, &remote] {
            let rels = |rel: &str| loc.list_under(rel).unwrap().into_iter().map(|e| e.rel).collect::<Vec<_>>();
            assert_eq!(rels("t"), ["t/date=2026-03-01/part-0.parquet"]);
            assert_eq!(rels(""), ["_state/manifest.json", "t/date=2026-03-01/part-0.parquet"]);
            assert_eq!(loc.list_dirs("t").unwrap(), ["date=2026-03-01"]);
            assert_eq!(&loc.get("t/date=2026-03-01/part-0.parquet").unwrap()[..], b"e");
            assert_eq!(&loc.get_mapped("_state/manifest.json").unwrap().unwrap()[..], b"m");
        }
        assert!(east.show("t/x").ends_with("/t/mall=east/x"), "{}", east.show("t/x"));
        assert_eq!(east.root().list_under("c").unwrap().len(), 1);
    }
}
