//! `rockusb fleet --serve`: the status page in a real browser. While three virtual boards
//! flash through the libusb shim, headless Chromium loads the page (running its script) and
//! its DOM shows one card per board at work; once they are done, one card per board with
//! its result. Then Ctrl-C ends the idle station cleanly.

mod flash_support;
mod shim_support;

use serde_json::Value;
use shim_support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The page's DOM after its script has run, as headless Chromium sees it.
fn dump_dom(url: &str, profile: &std::path::Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Lets the page's timers and fetches run before the DOM is dumped.
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// GET `path` from the station's server.
fn get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the station");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// The `<section class="card …">` elements of a DOM dump: (classes, data-port, text).
fn cards(dom: &str) -> Vec<(String, String, String)> {
    // The script's own template text is not a card.
    let dom = dom.split_once("<script").map_or(dom, |(page, _)| page);
    dom.split("<section ")
        .skip(1)
        .map(|s| {
            let attr = |name: &str| {
                s.split_once(&format!("{name}=\""))
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(v, _)| v.to_string())
                    .unwrap_or_default()
            };
            let body = s.split_once("</section>").map_or(s, |(b, _)| b);
            (attr("class"), attr("data-port"), body.to_string())
        })
        .collect()
}

fn refreshed(dom: &str) -> u64 {
    dom.split_once("data-refreshed=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn fleet_status_page_in_headless_chromium_shows_a_card_per_board_then_the_results() {
    let test = "fleet_status_page_in_headless_chromium_shows_a_card_per_board_then_the_results";
    if !flash_support::tools(test) || !rockusb_testkit::tool(test, "chromium", "chromium") {
        return;
    }
    let Some(loader) = testdata_file(test, RK3588_LOADER) else {
        return;
    };
    let boards = Boards::on_bus(&["a", "b", "c"], 64);
    let raw = flash_support::talos_image(boards.root());
    let xz = flash_support::xz(&raw);
    let names = boards.file("fleet.toml");
    std::fs::write(&names, "[ports]\n\"1-2\" = \"bench <2>\"\n").unwrap();
    let profile = tempfile::tempdir().unwrap();

    // A slow link (3 MB/s) keeps the boards writing for seconds; no --count: the station
    // runs until it is stopped.
    let mut cmd = boards.rockusb(&["--json", "fleet", "--serve", "127.0.0.1:0", "--loader"]);
    cmd.arg(&loader)
        .arg("--names")
        .arg(&names)
        .arg(&xz)
        .env("ROCKUSB_SHIM_LINK", "3e6,0.5e-3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(value) = serde_json::from_str(&line) {
                let _ = lines_tx.send(value);
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the station went quiet")
    };
    let url = loop {
        let line = next();
        if line["event"] == "serving" {
            break line["url"].as_str().unwrap().to_string();
        }
    };
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    // Every board writing: one card each, at work.
    let mut writing = std::collections::BTreeSet::new();
    while writing.len() < 3 {
        let line = next();
        if line["event"] == "phase-start" && line["phase"] == "write" {
            writing.insert(line["board"].as_str().unwrap().to_string());
        }
    }
    let dom = dump_dom(&url, profile.path());
    assert!(
        refreshed(&dom) >= 1,
        "the page's script did not run:\n{dom}"
    );
    let during = cards(&dom);
    let ports: Vec<&str> = during.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(ports, ["1-1", "1-2", "1-3"], "{dom}");
    for (class, port, body) in &during {
        assert_eq!(class, "card working", "{port}: {body}");
    }
    assert!(
        during[1].2.contains("<h2>bench &lt;2&gt;</h2>"),
        "{}",
        during[1].2
    );

    // Wait for the station to record all three done (its own JSON says so).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let status: Value = serde_json::from_str(&get(&addr, "/status.json")).unwrap();
        if status["flashed"].as_u64().unwrap_or(0) + status["failed"].as_u64().unwrap_or(0) == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the boards never finished: {status:#}"
        );
        // Progress events pace the wait; the deadline above bounds it.
        let _ = lines.recv_timeout(Duration::from_secs(1));
    }
    let dom = dump_dom(&url, profile.path());
    let after = cards(&dom);
    assert_eq!(after.len(), 3, "{dom}");
    for (class, port, body) in &after {
        assert_eq!(class, "card flashed", "{port}: {body}");
        assert!(
            body.contains(r#"<p class="result">flashed</p>"#),
            "{port}: {body}"
        );
    }
    assert!(dom.contains("3 flashed, 0 failed, 0 unfinished"), "{dom}");

    // Ctrl-C ends the idle station; nothing was left unfinished, so it ends well.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
