//! `footfall serve`: the live big screen. One page and a read-only JSON API over the published
//! tables, on hyper (HTTP/1.1) in its own tokio runtime; the data is read on blocking threads
//! through the same storage layer as every command.
//!
//! Why so small a surface: the page is meant for a wall display in a control room, reachable
//! from a network footfall does not control. So: GET/HEAD only, two paths, bounded headers, a
//! token off loopback (bearer, or `?token=` once then a cookie; compared in constant time), and
//! only aggregates in any response — no device id, not even a pseudonym.

mod live;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};

use crate::bail_usage;
use crate::config::ReadPlan;

/// What `serve` does, validated before it listens.
pub struct ServePlan {
    pub listen: SocketAddr,
    pub token: Option<String>,
    /// Data older than this is shown as a warning.
    pub stale_after: Duration,
    pub read: ReadPlan,
    /// Run `update` on this interval (`--update-every`).
    pub update: Option<(Duration, crate::config::Plan)>,
}

impl ServePlan {
    /// Off loopback a token is required.
    pub fn check(&self) -> Result<()> {
        if !self.listen.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            bail_usage!(
                "serve: listening on {} (not loopback) needs a token: --token-env VAR naming an environment variable",
                self.listen
            );
        }
        Ok(())
    }
}

/// The newest live data, computed at most once a second however many clients poll.
struct Cache {
    at: Option<Instant>,
    body: Bytes,
}

struct Server {
    plan: ServePlan,
    cache: Mutex<Cache>,
    /// Held by the request recomputing the cache.
    computing: Mutex<()>,
    /// The last update's failure, shown on the page.
    update_error: Mutex<Option<String>>,
}

const COOKIE_NAME: &str = "footfall_token";
/// Request headers beyond this many bytes are refused (hyper answers 431).
const MAX_HEADERS: usize = 16 * 1024;

/// Serves until the process is stopped. `ready` is called with the bound address.
pub fn serve(plan: ServePlan, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    plan.check()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(plan.listen)
            .await
            .with_context(|| format!("serve: cannot listen on {}", plan.listen))?;
        let addr = listener.local_addr()?;
        let server = Arc::new(Server {
            plan,
            cache: Mutex::new(Cache { at: None, body: Bytes::new() }),
            computing: Mutex::new(()),
            update_error: Mutex::new(None),
        });
        if let Some((every, _)) = &server.plan.update {
            let (every, s) = (*every, server.clone());
            std::thread::spawn(move || updates(&s, every));
        }
        ready(addr);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(_) => continue,
            };
            let s = server.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let s = s.clone();
                    async move { Ok::<_, std::convert::Infallible>(s.handle(req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(MAX_HEADERS.max(8192))
                    .header_read_timeout(Duration::from_secs(10))
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                let _ = conn.await;
            });
        }
    })
}

/// Runs `update` every `every`, as cron would (the same lock); a failure is kept for the page.
fn updates(s: &Server, every: Duration) {
    let Some((_, plan)) = &s.plan.update else { return };
    loop {
        let r = crate::pipeline::execute(
            plan,
            crate::pipeline::Mode::Update,
            false,
            crate::progress::Progress::new(crate::progress::ProgressMode::Off, true),
        );
        let msg = r.err().map(|e| format!("{e:#}"));
        if let Some(m) = &msg {
            eprintln!("serve: update failed: {m}");
        }
        *s.update_error.lock().unwrap_or_else(|e| e.into_inner()) = msg;
        s.cache.lock().unwrap_or_else(|e| e.into_inner()).at = None;
        std::thread::sleep(every);
    }
}

fn response(status: StatusCode, ty: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_str(ty).unwrap_or(HeaderValue::from_static("text/plain")));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

fn text(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    response(status, "text/plain; charset=utf-8", format!("{msg}\n"))
}

/// Equal in constant time for equal lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Server {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
            r.headers_mut().insert("allow", HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let head = req.method() == Method::HEAD;
        let (path, query) = (req.uri().path().to_string(), req.uri().query().unwrap_or("").to_string());
        let mut set_cookie = false;
        if let Some(token) = &self.plan.token {
            let bearer = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
            let cookie = req
                .headers()
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| c.split(';').find_map(|kv| kv.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('=')));
            let in_query = query.split('&').find_map(|kv| kv.strip_prefix("token="));
            let ok = |v: Option<&str>| v.is_some_and(|v| same(v.as_bytes(), token.as_bytes()));
            if ok(in_query) {
                set_cookie = true;
            } else if !ok(bearer) && !ok(cookie) {
                return text(StatusCode::UNAUTHORIZED, "a token is required (Authorization: Bearer, or ?token=)");
            }
        }
        // Only these; a query other than the token is refused, not ignored.
        let params_ok = query.is_empty() || query.split('&').all(|kv| kv.starts_with("token="));
        let mut r = match (path.as_str(), params_ok) {
            (_, false) => text(StatusCode::BAD_REQUEST, "unknown query parameter"),
            ("/", _) => response(StatusCode::OK, "text/html; charset=utf-8", live::page()),
            ("/api/live", _) => {
                let s = self.clone();
                match tokio::task::spawn_blocking(move || s.live()).await {
                    Ok(body) => response(StatusCode::OK, "application/json", body),
                    Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "the live data could not be computed"),
                }
            }
            _ => text(StatusCode::NOT_FOUND, "not found: the page is / and the data /api/live"),
        };
        if set_cookie {
            if let Some(t) = &self.plan.token {
                let c = format!("{COOKIE_NAME}={t}; HttpOnly; SameSite=Strict; Path=/");
                if let Ok(v) = HeaderValue::from_str(&c) {
                    r.headers_mut().insert(SET_COOKIE, v);
                }
            }
        }
        if head {
            *r.body_mut() = Full::new(Bytes::new());
        }
        r
    }

    /// The live JSON, recomputed at most once a second by one request at a time; meanwhile the
    /// others get the previous answer instead of queueing behind the tables being read.
    fn live(&self) -> Bytes {
        let cached = |c: &Cache, any_age: bool| {
            (!c.body.is_empty() && (any_age || c.at.is_some_and(|at| at.elapsed() < Duration::from_secs(1))))
                .then(|| c.body.clone())
        };
        if let Some(b) = cached(&self.cache.lock().unwrap_or_else(|e| e.into_inner()), false) {
            return b;
        }
        let _computing = match self.computing.try_lock() {
            Ok(g) => g,
            Err(_) => {
                if let Some(b) = cached(&self.cache.lock().unwrap_or_else(|e| e.into_inner()), true) {
                    return b;
                }
                self.computing.lock().unwrap_or_else(|e| e.into_inner())
            }
        };
        if let Some(b) = cached(&self.cache.lock().unwrap_or_else(|e| e.into_inner()), false) {
            return b;
        }
        let error = self.update_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let v = live::data(&self.plan.read, self.plan.stale_after, error);
        let body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Cache { at: Some(Instant::now()), body: body.clone() };
        body
    }
}
