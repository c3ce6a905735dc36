//! Object storage end to end against a real S3-compatible server on 127.0.0.1 (s3s-fs,
//! installed by `.ci/run` into ~/.cache/footfall-tools). Each test starts its own server.
//! Without the server binary `cargo test` reports these tests as ignored (see build.rs);
//! with FOOTFALL_REQUIRE_S3=1 (set by `.ci/run`) they run, and a missing server fails them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util;
use crate::util::*;

const KEY: &str = "footfall-test";
const SECRET: &str = "footfall-test-secret";

fn server_bin() -> PathBuf {
    let p = match std::env::var("FOOTFALL_S3S_BIN") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/footfall-tools/bin/s3s-fs"),
    };
    assert!(
        p.exists(),
        "s3s-fs not found at {}: run .ci/run, or cargo install s3s-fs@0.14.1 --features binary --root ~/.cache/footfall-tools, then touch build.rs",
        p.display()
    );
    p
}

struct Server {
    child: Option<Child>,
    bin: PathBuf,
    root: PathBuf,
    port: u16,
}

impl Server {
    fn start(bin: PathBuf, root: &Path) -> Server {
        std::fs::create_dir_all(root.join("bucket")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut s = Server { child: None, bin, root: root.to_path_buf(), port };
        s.restart();
        s
    }

    fn restart(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                KEY,
                "--secret-key",
                SECRET,
            ])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start s3s-fs");
        self.child = Some(child);
        let t0 = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t0.elapsed().as_secs() < 20, "s3s-fs did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ff(s: &Server, cwd: &Path, args: &[&str], extra: &[(&str, &str)]) -> Out {
    let env = s.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    run_env(cwd, args, &all)
}

/// Uploads a local file into the bucket by writing it under the server's root through S3:
/// done with `footfall`'s own object_store client so the test needs no other tool.
fn upload(s: &Server, local: &Path, key: &str) {
    let opts = footfall::store::StorageOpts {
        endpoint: Some(s.endpoint()),
        region: Some("us-east-1".into()),
        allow_http: Some(true),
        ..Default::default()
    };
    // Credentials are only read from the environment; every test uses the same ones.
    std::env::set_var("AWS_ACCESS_KEY_ID", KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
    let loc = footfall::store::Location::parse_with("s3://bucket", Path::new("."), "test", &opts).unwrap();
    loc.put(key, bytes::Bytes::from(std::fs::read(local).unwrap())).unwrap();
}

/// `s3.toml` must keep the golden config's settings (see data/golden/footfall.toml).
fn setup(s: &Server, d: &Path) {
    for t in ["area_shop.csv", "place_info.csv", "ap_info.csv"] {
        upload(s, &root().join("data/golden/dims").join(t), &format!("dims/{t}"));
    }
    for f in files_under(&root().join("data/golden/sales")) {
        upload(s, &root().join("data/golden/sales").join(&f), &format!("sales/{}", f.display()));
    }
    std::fs::write(
        d.join("s3.toml"),
        format!(
            "[mall]\ntimezone = \"Europe/Berlin\"\n[input]\nprobes = \"s3://bucket/probes\"\ndims = \"s3://bucket/dims\"\nsales = \"s3://bucket/sales\"\n[output]\ndir = \"s3://bucket/out\"\n[storage]\nendpoint = \"{}\"\nallow_http = true\nretries = 2\nretry_timeout = \"3s\"\nlock_lease = \"3s\"\n[staff]\nmin_days = 2\n",
            s.endpoint()
        ),
    )
    .unwrap();
    // The local-disk reference over the same files.
    let local = golden_mall();
    ok(local.path(), &["run", "--config", "footfall.toml", "--quiet"]);
    copy_dir(&local.path().join("out"), &d.join("local-out"));
}

/// A temp dir with a running server, dims uploaded, `s3.toml` and the local reference.
fn bucket() -> (tempfile::TempDir, Server) {
    let bin = server_bin();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(bin, &dir.path().join("s3root"));
    setup(&s, dir.path());
    (dir, s)
}

fn upload_probes(s: &Server, files: &[PathBuf]) {
    for f in files {
        upload(s, &root().join("data/golden/probes").join(f), &format!("probes/{}", f.display()));
    }
}

fn assert_equal_to_local(s: &Server, d: &Path) {
    let o = ff(s, d, &["diff", "s3://bucket/out", "local-out"], &[]);
    assert_eq!(o.code, 0, "bucket results differ from the local run\n{}", o.explain());
}

#[test]
#[cfg_attr(not(has_s3s), ignore = "needs s3s-fs: .ci/run installs it (see tests/suite/s3.rs)")]
fn run_and_updates_in_a_bucket_equal_the_local_run() {
    let (dir, s) = bucket();
    let d = dir.path();
    let files = golden_files();
    let third = files.len() / 3;
    // Batches out of order: the last third first.
    for batch in [&files[2 * third..], &files[..third], &files[third..2 * third]] {
        upload_probes(&s, batch);
        let o = ff(&s, d, &["update", "--config", "s3.toml"], &[]);
        assert_eq!(o.code, 0, "{}", o.explain());
    }
    assert_equal_to_local(&s, d);
    // A full run from the bucket gives the same, and show/status read the bucket.
    let o = ff(&s, d, &["run", "--config", "s3.toml"], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_equal_to_local(&s, d);
    let o = ff(&s, d, &["show", "mall_daily_visitors", "--config", "s3.toml", "--format", "csv"], &[]);
    assert!(o.stdout.starts_with("date,visitors\n2026-03-28,"), "{}", o.explain());
    let o = ff(&s, d, &["status", "--config", "s3.toml"], &[]);
    assert!(o.stdout.contains("pending:     0 new, 0 changed"), "{}", o.explain());
    // The report reads the bucket: the same file as from the local outputs.
    let o = ff(&s, d, &["report", "--config", "s3.toml", "--out", "s3.html"], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    let o = ff(&s, d, &["report", "--config", "s3.toml", "--results", "local-out", "--out", "local.html"], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    assert!(std::fs::read(d.join("s3.html")).unwrap() == std::fs::read(d.join("local.html")).unwrap());
    // No secret in the state.
    let manifest = std::fs::read_to_string(d.join("s3root/bucket/out/_state/manifest.json")).unwrap();
    assert!(!manifest.contains(SECRET));
}

#[test]
#[cfg_attr(not(has_s3s), ignore = "needs s3s-fs: .ci/run installs it (see tests/suite/s3.rs)")]
fn server_down_mid_update_is_exit_3_and_the_next_update_completes() {
    let (dir, mut s) = bucket();
    let d = dir.path();
    let files = golden_files();
    let half = files.len() / 2;
    upload_probes(&s, &files[..half]);
    assert_eq!(ff(&s, d, &["update", "--config", "s3.toml", "--quiet"], &[]).code, 0);
    let before = ff(&s, d, &["show", "mall_daily_visitors", "--config", "s3.toml", "--format", "csv"], &[]).stdout;
    upload_probes(&s, &files[half..]);
    // The update pauses after writing its segments; the server dies meanwhile.
    let (child, paused) = spawn_paused_update(&s, d, "after-segments");
    paused.wait_reached();
    s.stop();
    let o = paused.resume(child);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "stderr: {stderr}");
    assert!(stderr.contains("s3://bucket/out/"), "the message names the object: {stderr}");
    s.restart();
    // Published results are as before the failed update.
    let after_failure =
        ff(&s, d, &["show", "mall_daily_visitors", "--config", "s3.toml", "--format", "csv"], &[]).stdout;
    assert_eq!(before, after_failure);
    // The failed update could not remove its lease from the dead server: the next one is
    // refused as locked until the lease (lock_lease = 3s) expires, then completes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = ff(&s, d, &["update", "--config", "s3.toml"], &[]);
        if o.code == 0 {
            break;
        }
        assert!(o.code == 3 && o.stderr.contains("is locked by another footfall run"), "{}", o.explain());
        assert!(std::time::Instant::now() < deadline, "the lease never expired: {}", o.explain());
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_equal_to_local(&s, d);
}

/// A background run held at a fault step (src/fault.rs) until [`Paused::resume`].
struct Paused {
    hold: PathBuf,
    reached: PathBuf,
}

impl Paused {
    /// Waits until the run has reached its step (it creates `reached` there).
    fn wait_reached(&self) {
        wait_for(&self.reached);
    }

    /// Lets the run go on and waits for it to end.
    fn resume(self, child: Child) -> std::process::Output {
        std::fs::remove_file(&self.hold).unwrap();
        child.wait_with_output().unwrap()
    }
}

/// Starts `update` in the background, held at `step` until resumed.
fn spawn_paused_update(s: &Server, d: &Path, step: &str) -> (Child, Paused) {
    let paused = Paused { hold: d.join(format!("hold-{step}")), reached: d.join(format!("reached-{step}")) };
    std::fs::write(&paused.hold, "").unwrap();
    let _ = std::fs::remove_file(&paused.reached);
    let mut cmd = Command::new(util::bin());
    cmd.args(["update", "--config", "s3.toml"])
        .current_dir(d)
        .env("FOOTFALL_PAUSE_AT", step)
        .env("FOOTFALL_PAUSE_WHILE", &paused.hold)
        .env("FOOTFALL_PAUSE_REACHED", &paused.reached);
    for (k, v) in s.env() {
        cmd.env(k, v);
    }
    (cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(), paused)
}

#[test]
#[cfg_attr(not(has_s3s), ignore = "needs s3s-fs: .ci/run installs it (see tests/suite/s3.rs)")]
fn concurrent_updates_on_one_bucket() {
    let (dir, s) = bucket();
    let d = dir.path();
    upload_probes(&s, &golden_files());
    let (mut first, paused) = spawn_paused_update(&s, d, "after-lock");
    paused.wait_reached();
    let o = ff(&s, d, &["update", "--config", "s3.toml"], &[]);
    assert_eq!(o.code, 3, "{}", o.explain());
    assert!(o.stderr.contains("locked by another footfall run"), "{}", o.explain());
    assert!(first.try_wait().unwrap().is_none(), "the holder ended before the second update failed");
    let out = paused.resume(first);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_equal_to_local(&s, d);
}

/// An expired lease is taken over, a live one is respected, step by step. (s3s-fs checks a
/// conditional PUT's precondition and then writes, not atomically, so two PUTs racing on one
/// ETag can both pass there: the concurrent race for an expired lease is tested against
/// object_store's in-memory store, whose conditional PUTs are atomic like S3's —
/// `state::lock::tests` — and against a local directory in `incremental.rs`.)
#[test]
#[cfg_attr(not(has_s3s), ignore = "needs s3s-fs: .ci/run installs it (see tests/suite/s3.rs)")]
fn an_expired_lease_is_taken_over_and_a_live_one_respected() {
    let (dir, s) = bucket();
    let d = dir.path();
    upload_probes(&s, &golden_files());
    let lease = |expires_at: i64| {
        let f = d.join("lease");
        std::fs::write(&f, format!("{{\"pid\":1,\"host\":\"gone\",\"started_at\":0,\"expires_at\":{expires_at}}}"))
            .unwrap();
        upload(&s, &f, "out/_state/lock");
    };
    // A live lease of another process: refused, naming it.
    lease(i64::MAX / 2);
    let o = ff(&s, d, &["update", "--config", "s3.toml"], &[]);
    assert_eq!(o.code, 3, "{}", o.explain());
    assert!(o.stderr.contains("locked by another footfall run (pid 1 on gone"), "{}", o.explain());
    // An expired one: taken over; while the new holder runs, a second update is refused.
    lease(0);
    let (child, paused) = spawn_paused_update(&s, d, "after-lock");
    paused.wait_reached();
    let o = ff(&s, d, &["update", "--config", "s3.toml"], &[]);
    assert_eq!(o.code, 3, "{}", o.explain());
    assert!(
        o.stderr.contains("locked by another footfall run") && !o.stderr.contains("pid 1 on gone"),
        "{}",
        o.explain()
    );
    let first = paused.resume(child);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(!s.root.join("bucket/out/_state/lock").exists(), "the lease is removed when its run ends");
    assert_equal_to_local(&s, d);
}

/// Every object under `prefix` in the bucket but the state, by name below it.
fn bucket_objects(s: &Server, prefix: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let dir = s.root.join("bucket").join(prefix);
    files_under(&dir)
        .into_iter()
        .filter(|p| !p.starts_with("_state"))
        .map(|p| (p.display().to_string(), std::fs::read(dir.join(&p)).unwrap()))
        .collect()
}

/// The documents of a YAML file as JSON (PyYAML in the readers' Python, see .ci/run).
fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let py = std::env::var("FOOTFALL_READERS_PYTHON")
        .expect("FOOTFALL_READERS_PYTHON: a Python with PyYAML (see .ci/run) to read the deploy manifests");
    let code = "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let o = Command::new(py).args(["-c", code]).arg(path).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap().as_array().unwrap().clone()
}

/// A container that runs footfall: its command line and its literal environment.
struct Step {
    command: Vec<String>,
    env: Vec<(String, String)>,
}

/// Every footfall container of a manifest, in document order, checking that credentials come
/// from a Secret: none is a literal value, every container takes a secretRef or no storage.
fn footfall_steps(v: &serde_json::Value, out: &mut Vec<Step>) {
    match v {
        serde_json::Value::Object(m) => {
            let cmd = m.get("command").and_then(|c| c.as_array());
            if let Some(cmd) = cmd.filter(|c| c.first().and_then(|f| f.as_str()) == Some("footfall")) {
                let env: Vec<(String, String)> = m
                    .get("env")
                    .and_then(|e| e.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|e| Some((e["name"].as_str()?.to_string(), e.get("value")?.as_str()?.to_string())))
                    .collect();
                assert!(env.iter().all(|(k, _)| !k.contains("SECRET") && !k.contains("KEY_ID")), "literal credentials");
                let from_secret = m.get("envFrom").is_some_and(|e| e.to_string().contains("secretRef"));
                let reads_storage = cmd.iter().any(|a| ["update", "chain"].contains(&a.as_str().unwrap_or("")));
                assert!(from_secret || !reads_storage, "a storage step without a Secret: {cmd:?}");
                out.push(Step { command: cmd.iter().map(|a| a.as_str().unwrap().to_string()).collect(), env });
            }
            for x in m.values() {
                footfall_steps(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| footfall_steps(x, out)),
        _ => {}
    }
}

/// A manifest's command line against the test: its config mount is the test's folder.
fn localize(cmd: &[String], etc: &Path, subst: &[(&str, &str)]) -> Vec<String> {
    cmd.iter()
        .skip(1)
        .map(|a| {
            let mut a = a.replace("/etc/footfall/", &format!("{}/", etc.display()));
            for (k, v) in subst {
                a = a.replace(k, v);
            }
            a
        })
        .collect()
}

/// Runs steps (command lines without `footfall`) at once, each with the server's credentials
/// and its own environment; every one must succeed.
fn at_once(s: &Server, d: &Path, runs: &[Step]) -> Vec<Out> {
    let outs = at_once_any(s, d, runs);
    for o in &outs {
        assert_eq!(o.code, 0, "{}", o.explain());
    }
    outs
}

/// The runs in parallel, whatever their exit codes.
fn at_once_any(s: &Server, d: &Path, runs: &[Step]) -> Vec<Out> {
    std::thread::scope(|sc| {
        let hs: Vec<_> = runs
            .iter()
            .map(|r| {
                sc.spawn(move || {
                    let args: Vec<&str> = r.command.iter().map(String::as_str).collect();
                    let env: Vec<(&str, &str)> = r.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    ff(s, d, &args, &env)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A manifest's step against the test's config folder, placeholders replaced.
fn local_step(step: &Step, etc: &Path, subst: &[(&str, &str)]) -> Step {
    Step { command: localize(&step.command, etc, subst), env: step.env.clone() }
}

#[test]
#[cfg_attr(not(has_s3s), ignore = "needs s3s-fs: .ci/run installs it (see tests/suite/s3.rs)")]
#[cfg_attr(not(has_readers), ignore = "needs FOOTFALL_READERS_PYTHON (PyYAML): .ci/run installs it")]
fn the_deploy_manifests_fan_a_chain_out_on_one_bucket_as_run_does() {
    let bin = server_bin();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Server::start(bin, &d.join("s3root"));
    crate::chain::chain(d);
    for (id, ..) in crate::chain::MALLS {
        for sub in ["probes", "dims"] {
            for f in files_under(&d.join(id).join(sub)) {
                upload(&s, &d.join(id).join(sub).join(&f), &format!("{sub}/{id}/{}", f.display()));
            }
        }
    }
    // One config per output: the reference `run`, then each orchestrator's.
    let config = |out: &str| -> PathBuf {
        let etc = d.join(format!("etc-{out}"));
        std::fs::create_dir_all(&etc).unwrap();
        let mut toml = format!(
            "[output]\ndir = \"s3://bucket/{out}\"\n[storage]\nendpoint = \"{}\"\nallow_http = true\n",
            s.endpoint()
        );
        for (id, tz, ..) in crate::chain::MALLS {
            toml += &format!(
                "[[malls]]\nid = \"{id}\"\ntimezone = \"{tz}\"\nprobes = \"s3://bucket/probes/{id}\"\ndims = \"s3://bucket/dims/{id}\"\n"
            );
        }
        std::fs::write(etc.join("chain.toml"), toml).unwrap();
        etc
    };
    let reference = config("ref");
    let o = ff(&s, d, &["run", "--config", reference.join("chain.toml").to_str().unwrap(), "--jobs", "2"], &[]);
    assert_eq!(o.code, 0, "{}", o.explain());
    let want = bucket_objects(&s, "ref");
    assert!(want.keys().any(|k| k.starts_with("chain_daily_visitors/")) && want.len() > 60, "{}", want.len());

    // Kubernetes: the Indexed Job's pods at once (index i = the i-th mall), then the chain job.
    let mut steps = Vec::new();
    for doc in yaml_documents(&root().join("deploy/kubernetes/footfall-chain.yaml")) {
        footfall_steps(&doc, &mut steps);
        if let Some(n) = doc.pointer("/spec/jobTemplate/spec/completions") {
            assert_eq!(n.as_u64(), Some(crate::chain::MALLS.len() as u64), "completions = the malls of the config");
        }
    }
    let [indexed, chain] = &steps[..] else { panic!("two footfall containers expected: {}", steps.len()) };
    assert!(indexed.command.contains(&"$(JOB_COMPLETION_INDEX)".to_string()), "{:?}", indexed.command);
    let etc = config("k8s");
    let pods = (0..crate::chain::MALLS.len())
        .map(|i| {
            let i = i.to_string();
            let mut env = indexed.env.clone();
            env.retain(|(k, _)| k != "JOB_COMPLETION_INDEX");
            env.push(("JOB_COMPLETION_INDEX".into(), i.clone()));
            Step { command: localize(&indexed.command, &etc, &[("$(JOB_COMPLETION_INDEX)", &i)]), env }
        })
        .collect::<Vec<_>>();
    at_once(&s, d, &pods);
    at_once(&s, d, &[local_step(chain, &etc, &[])]);
    assert!(bucket_objects(&s, "k8s") == want, "Kubernetes fan-out differs from `footfall run` of the chain");

    // Argo: the malls step's JSON is the fan-out's list; each item's update at once; the chain.
    let mut steps = Vec::new();
    for doc in yaml_documents(&root().join("deploy/argo/footfall-chain.yaml")) {
        footfall_steps(&doc, &mut steps);
    }
    let [malls, update, chain] = &steps[..] else { panic!("three footfall containers expected: {}", steps.len()) };
    let etc = config("argo");
    let o = at_once(&s, d, &[local_step(malls, &etc, &[])]).remove(0);
    let items: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(items.len(), crate::chain::MALLS.len());
    let pods = items
        .iter()
        .map(|item| local_step(update, &etc, &[("{{inputs.parameters.mall}}", item["id"].as_str().unwrap())]))
        .collect::<Vec<_>>();
    // A corrupt file in mall `other`'s probes: its pod fails alone, naming the file; the
    // others publish what `run` does, and nothing of `other` is published.
    let first = files_under(&d.join("other/probes")).remove(0);
    let key = format!("probes/other/{}", first.display());
    std::fs::write(d.join("bad.parquet"), b"not parquet").unwrap();
    upload(&s, &d.join("bad.parquet"), &key);
    let outs = at_once_any(&s, d, &pods);
    for (item, o) in items.iter().zip(&outs) {
        if item["id"] == "other" {
            assert!(o.code != 0 && o.stderr.contains(&first.display().to_string()), "{}", o.explain());
        } else {
            assert_eq!(o.code, 0, "{}", o.explain());
        }
    }
    let mall_part = |all: &std::collections::BTreeMap<String, Vec<u8>>, id: &str| -> Vec<(String, Vec<u8>)> {
        all.iter().filter(|(k, _)| k.contains(&format!("/mall={id}"))).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let partial = bucket_objects(&s, "argo");
    for id in ["east", "west"] {
        assert!(mall_part(&partial, id) == mall_part(&want, id), "mall {id} differs from `run` of the chain");
    }
    assert!(mall_part(&partial, "other").is_empty());
    // Fixed: its pod again, then the chain step.
    upload(&s, &d.join("other/probes").join(&first), &key);
    at_once(&s, d, &pods[items.iter().position(|i| i["id"] == "other").unwrap()..][..1]);
    at_once(&s, d, &[local_step(chain, &etc, &[])]);
    assert!(bucket_objects(&s, "argo") == want, "Argo fan-out differs from `footfall run` of the chain");
}
