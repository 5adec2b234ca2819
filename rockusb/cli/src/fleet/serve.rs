//! `fleet --serve ADDR`: the station at a glance in a browser. Read-only, two routes:
//! `/` is a page with one card per port (name, phase, progress, rate, result), drawn on the
//! server so it shows without scripts and then kept live by polling `/status.json`, the
//! station's report as `--report` writes it. Loopback unless an address says otherwise.

use super::station::{BoardRecord, Outcome, Report, Station};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// `PORT` (on 127.0.0.1) or `HOST:PORT`.
pub fn parse_addr(text: &str) -> Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>().with_context(|| {
        format!("--serve {text:?}: give a port (e.g. 8080, on 127.0.0.1) or HOST:PORT (e.g. 127.0.0.1:8080)")
    })
}

/// Starts serving the station's page and JSON at `addr` from a thread of its own;
/// returns the address bound (the port, when 0 was asked for).
pub fn start(addr: SocketAddr, station: Arc<Station>) -> Result<SocketAddr> {
    let server = tiny_http::Server::http(addr).map_err(|e| {
        anyhow::anyhow!("cannot serve the status page on {addr}: {e}; choose another port")
    })?;
    let Some(bound) = server.server_addr().to_ip() else {
        bail!("the status page's server did not bind an IP address");
    };
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: the status page on {bound} is reachable from other machines (read-only)"
        );
    }
    std::thread::Builder::new()
        .name("fleet-page".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = respond(request.method(), request.url(), &station);
                let _ = request.respond(response);
            }
        })
        .context("cannot start the status page's thread")?;
    Ok(bound)
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn respond(method: &tiny_http::Method, url: &str, station: &Station) -> Response {
    let header = |value: &str| {
        tiny_http::Header::from_bytes(&b"Content-Type"[..], value.as_bytes())
            .expect("a valid header")
    };
    let no_cache = tiny_http::Header::from_bytes(&b"Cache-Control"[..], &b"no-store"[..])
        .expect("a valid header");
    if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        return tiny_http::Response::from_string("read-only: GET / or /status.json\n")
            .with_status_code(405);
    }
    match url.split('?').next().unwrap_or("") {
        "/" => tiny_http::Response::from_string(page(&station.report()))
            .with_header(header("text/html; charset=utf-8"))
            .with_header(no_cache),
        "/status.json" => {
            let json = serde_json::to_string(&station.report()).unwrap_or_else(|_| "{}".into());
            tiny_http::Response::from_string(json)
                .with_header(header("application/json"))
                .with_header(no_cache)
        }
        _ => tiny_http::Response::from_string("not found: GET / or /status.json\n")
            .with_status_code(404),
    }
}

/// The newest board on each port: what the cards show.
fn latest_per_port(report: &Report) -> Vec<&BoardRecord> {
    let mut ports: BTreeMap<&str, &BoardRecord> = BTreeMap::new();
    for b in &report.boards {
        ports.insert(&b.port, b);
    }
    ports.into_values().collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn outcome(b: &BoardRecord) -> &'static str {
    match b.result {
        Outcome::Working => "working",
        Outcome::Flashed => "flashed",
        Outcome::Failed => "failed",
        Outcome::Unfinished => "unfinished",
    }
}

/// One card, as the page's script also draws it.
fn card(b: &BoardRecord) -> String {
    let percent = if b.phase_total_bytes > 0 {
        (b.phase_done_bytes as f64 * 100.0 / b.phase_total_bytes as f64).min(100.0)
    } else {
        0.0
    };
    format!(
        r#"<section class="card {result}" data-port="{port}"><h2>{name}</h2><p class="port">{port}</p><p class="phase">{phase}</p><progress max="100" value="{percent:.0}"></progress><p class="rate">{rate:.1} MB/s</p><p class="result">{result}</p><p class="error">{error}</p></section>"#,
        result = outcome(b),
        port = escape(&b.port),
        name = escape(b.name.as_deref().unwrap_or(&b.port)),
        phase = escape(&b.phase),
        rate = b.rate / 1e6,
        error = escape(b.error.as_deref().unwrap_or("")),
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em;background:#f4f4f4}\
#cards{display:flex;flex-wrap:wrap;gap:1em}\
.card{background:#fff;border-left:6px solid #999;padding:.5em 1em;width:16em}\
.card.flashed{border-color:#2a2}.card.failed{border-color:#c22}.card.unfinished{border-color:#c82}\
.card h2{margin:.2em 0;font-size:1.1em}.card p{margin:.2em 0}.port{color:#666}\
.error{color:#c22;font-size:.85em}progress{width:100%}";

/// Redraws the cards from `/status.json` every half second.
const SCRIPT: &str = r#"
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
function card(b) {
  const result = b.result === "working" ? "working" : b.result;
  const pct = b.phase_total_bytes > 0 ? Math.min(100, b.phase_done_bytes * 100 / b.phase_total_bytes) : 0;
  return `<section class="card ${result}" data-port="${esc(b.port)}"><h2>${esc(b.name ?? b.port)}</h2>` +
    `<p class="port">${esc(b.port)}</p><p class="phase">${esc(b.phase)}</p>` +
    `<progress max="100" value="${pct.toFixed(0)}"></progress><p class="rate">${(b.rate / 1e6).toFixed(1)} MB/s</p>` +
    `<p class="result">${result}</p><p class="error">${esc(b.error)}</p></section>`;
}
async function refresh() {
  try {
    const report = await (await fetch("/status.json", {cache: "no-store"})).json();
    const latest = new Map();
    for (const b of report.boards) latest.set(b.port, b);
    const ports = [...latest.keys()].sort();
    document.getElementById("cards").innerHTML = ports.map((p) => card(latest.get(p))).join("");
    document.getElementById("summary").textContent =
      `${report.flashed} flashed, ${report.failed} failed, ${report.unfinished} unfinished` +
      (report.running ? "" : " (the station has stopped)");
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (e) {
    document.getElementById("summary").textContent = "the station does not answer";
  }
}
setInterval(refresh, 500);
refresh();
"#;

fn summary(report: &Report) -> String {
    format!(
        "{} flashed, {} failed, {} unfinished{}",
        report.flashed,
        report.failed,
        report.unfinished,
        if report.running {
            ""
        } else {
            " (the station has stopped)"
        }
    )
}

fn page(report: &Report) -> String {
    let cards: String = latest_per_port(report).into_iter().map(card).collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>rockusb fleet</title>\
         <style>{STYLE}</style></head><body data-refreshed=\"0\"><h1>rockusb fleet: {image}</h1>\
         <p id=\"summary\">{summary}</p><div id=\"cards\">{cards}</div><script>{SCRIPT}</script></body></html>",
        image = escape(&report.image),
        summary = summary(report),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_pages_and_refusals() {
        assert_eq!(parse_addr("8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(parse_addr("0.0.0.0:81").unwrap().to_string(), "0.0.0.0:81");
        assert!(parse_addr("localhost").is_err());

        let station = Station::new("img <1>".into(), "abc".into());
        let i = station.take("1-2", Some("<slot>"), None);
        station.finish(i, Some("it broke & stopped".into()));
        let html = page(&station.report());
        assert!(html.contains("&lt;slot&gt;"), "{html}");
        assert!(html.contains("it broke &amp; stopped"), "{html}");
        assert!(
            html.contains(r#"class="card failed" data-port="1-2""#),
            "{html}"
        );

        let get = tiny_http::Method::Get;
        let status = |r: Response| r.status_code().0;
        assert_eq!(status(respond(&get, "/", &station)), 200);
        assert_eq!(status(respond(&get, "/status.json?x=1", &station)), 200);
        assert_eq!(status(respond(&get, "/nope", &station)), 404);
        assert_eq!(
            status(respond(&tiny_http::Method::Post, "/", &station)),
            405
        );
    }
}
