//! The load client of `scripts/bench-serve`: N clients, each on its own thread and keep-alive
//! connection, requesting one path back to back (the next request as soon as the answer is read)
//! for a number of seconds. Prints one line of figures; any answer but a complete 200 counts as an
//! error (the connection is then reopened). Latencies of requests that had to connect first are
//! kept apart (`connect_max_ms`): a full accept queue shows there as 1 s SYN retransmissions.
//!
//!     serve_load ADDR CLIENTS SECONDS PATH

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One request on `conn`; Ok(body length) for a complete 200.
fn once(conn: &mut BufReader<TcpStream>, request: &[u8]) -> Result<usize, String> {
    conn.get_mut().write_all(request).map_err(|e| e.to_string())?;
    let mut line = String::new();
    conn.read_line(&mut line).map_err(|e| e.to_string())?;
    let status = line.split(' ').nth(1).unwrap_or("").to_string();
    let mut length = None;
    loop {
        line.clear();
        if conn.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("closed".into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            }
        }
    }
    let length = length.ok_or("no content-length")?;
    let mut body = vec![0; length];
    conn.read_exact(&mut body).map_err(|e| e.to_string())?;
    if status != "200" || body.first() != Some(&b'{') {
        return Err(format!("status {status}"));
    }
    Ok(length)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let [_, addr, clients, seconds, path] = &a[..] else {
        eprintln!("usage: serve_load ADDR CLIENTS SECONDS PATH");
        std::process::exit(2);
    };
    let (clients, seconds): (usize, u64) = (clients.parse().unwrap(), seconds.parse().unwrap());
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let end = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, request) = (addr.clone(), request.clone());
            std::thread::spawn(move || {
                let (mut micros, mut errors, mut bytes, mut connect_max) = (Vec::new(), Vec::new(), 0usize, 0u64);
                let mut conn: Option<BufReader<TcpStream>> = None;
                while Instant::now() < end {
                    let start = Instant::now();
                    let fresh = conn.is_none();
                    let r = match conn.as_mut() {
                        Some(c) => once(c, &request),
                        None => match TcpStream::connect(&addr) {
                            Ok(s) => {
                                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                                once(conn.insert(BufReader::new(s)), &request)
                            }
                            Err(e) => Err(e.to_string()),
                        },
                    };
                    match r {
                        Ok(n) if fresh => {
                            connect_max = connect_max.max(start.elapsed().as_micros() as u64);
                            bytes += n;
                        }
                        Ok(n) => {
                            micros.push(start.elapsed().as_micros() as u64);
                            bytes += n;
                        }
                        Err(e) => {
                            errors.push(e);
                            conn = None;
                        }
                    }
                }
                (micros, errors, bytes, connect_max)
            })
        })
        .collect();
    let (mut micros, mut errors, mut bytes, mut connect_max) = (Vec::new(), Vec::new(), 0, 0);
    for t in threads {
        let (m, e, b, c) = t.join().unwrap();
        connect_max = connect_max.max(c);
        micros.extend(m);
        errors.extend(e);
        bytes += b;
    }
    micros.sort_unstable();
    let q = |p: f64| micros.get(((micros.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0);
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "requests {} errors {} req/s {:.0} p50_ms {:.2} p99_ms {:.2} max_ms {:.2} connect_max_ms {:.2} mean_body_bytes {}",
        micros.len(),
        errors.len(),
        micros.len() as f64 / seconds as f64,
        ms(q(0.50)),
        ms(q(0.99)),
        ms(micros.last().copied().unwrap_or(0)),
        ms(connect_max),
        bytes / micros.len().max(1),
    );
    errors.sort();
    errors.dedup();
    for e in errors.iter().take(5) {
        eprintln!("serve_load: error: {e}");
    }
}
