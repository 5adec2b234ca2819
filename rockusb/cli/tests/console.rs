//! `rockusb console` against pseudo-terminal pairs: one pty stands in for the USB serial
//! adapter (the console opens its slave as PORT, the test plays the board on the master),
//! another, when the test needs a real terminal, is the console's keyboard and screen.
//!
//! Every wait has a deadline, so a console that hangs fails the test instead of hanging it.

use rustix::fd::OwnedFd;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{LocalModes, tcgetattr};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// A pseudo-terminal: the test holds the master side; the slave is a path to hand out.
struct Pty {
    master: File,
    slave: PathBuf,
}

impl Pty {
    fn open() -> Self {
        let master: OwnedFd =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let slave = PathBuf::from(ptsname(&master, Vec::new()).unwrap().into_string().unwrap());
        Pty {
            master: File::from(master),
            slave,
        }
    }

    /// Opens the slave side, as the console's terminal (never as the test's own).
    fn open_slave(&self) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&self.slave)
            .unwrap()
    }

    fn write(&self, bytes: &[u8]) {
        (&self.master).write_all(bytes).unwrap();
    }

    /// What arrives on the master side, read in a thread so that waits can time out.
    fn reader(&self) -> Collector {
        Collector::spawn(self.master.try_clone().unwrap())
    }
}

/// Bytes from a blocking source, gathered by a thread, waited for with a deadline.
struct Collector {
    chunks: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Collector {
    fn spawn(mut source: impl Read + Send + 'static) -> Self {
        let (send, chunks) = channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = source.read(&mut buffer) {
                if n == 0 || send.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Collector {
            chunks,
            seen: Vec::new(),
        }
    }

    /// Waits until `needle` has arrived; returns everything seen so far.
    fn expect(&mut self, needle: &[u8]) -> &[u8] {
        let start = Instant::now();
        while !contains(&self.seen, needle) {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!(
                    "{:?} did not arrive within {DEADLINE:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
        &self.seen
    }

    /// Everything that arrives within `wait`.
    fn drain(&mut self, wait: Duration) -> &[u8] {
        while let Ok(chunk) = self.chunks.recv_timeout(wait) {
            self.seen.extend(chunk);
        }
        &self.seen
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// JSON lines from the console's stdout, each waited for with a deadline.
struct JsonLines(Receiver<serde_json::Value>);

impl JsonLines {
    fn spawn(stdout: ChildStdout) -> Self {
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if send.send(value).is_err() {
                    break;
                }
            }
        });
        JsonLines(lines)
    }

    fn next(&self) -> serde_json::Value {
        self.0
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no JSON line within {DEADLINE:?}"))
    }
}

fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the console did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < DEADLINE,
            "{what} did not happen within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn console() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rockusb"))
}

/// `2025-01-31T08:00:00.123Z`, as the log and the JSON events write times.
fn is_rfc3339_millis(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 24
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// The log's lines as (timestamp, text), each timestamp checked.
fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (time, text) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("no timestamp in the log line {line:?}"));
            assert!(is_rfc3339_millis(time), "{time:?} in {line:?}");
            text.to_string()
        })
        .collect()
}

/// The console as a person uses it: its terminal is a pty, so it goes raw; what the
/// board sends is shown and logged, keys (Ctrl-C too) reach the board, the exit key ends it
/// with status 0 and the terminal's settings come back.
#[test]
fn terminal_session_shows_logs_types_and_exits_with_the_exit_key() {
    let board = Pty::open();
    let terminal = Pty::open();
    let tty = terminal.open_slave();
    let cooked = tcgetattr(&tty).unwrap();
    assert!(
        cooked
            .local_modes
            .contains(LocalModes::ICANON | LocalModes::ECHO)
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");

    let mut child = console()
        .arg("console")
        .arg(&board.slave)
        .arg("--log")
        .arg(&log)
        .stdin(tty.try_clone().unwrap())
        .stdout(tty.try_clone().unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = Collector::spawn(child.stderr.take().unwrap());
    stderr.expect(b"exit with Ctrl-] then q");
    wait_until("raw mode on the console's terminal", || {
        !tcgetattr(&tty)
            .unwrap()
            .local_modes
            .contains(LocalModes::ICANON)
    });

    let mut screen = terminal.reader();
    board.write(b"U-Boot 2024.01-nanopi-m6\r\nDRAM:  16 GiB\r\n=> ");
    screen.expect(b"U-Boot 2024.01-nanopi-m6\r\nDRAM:  16 GiB\r\n=> ");

    let mut uart = board.reader();
    terminal.write(b"printenv\r");
    uart.expect(b"printenv\r");
    // Raw mode: Ctrl-C is a byte for the board, not a signal for the console.
    terminal.write(b"\x03");
    uart.expect(b"printenv\r\x03");

    terminal.write(b"\x1dq");
    let status = wait_for_exit(&mut child);
    assert!(
        status.success(),
        "{status}: {}",
        String::from_utf8_lossy(stderr.drain(Duration::ZERO))
    );
    assert!(
        contains(
            stderr.drain(Duration::from_millis(100)),
            b"closed (exit key)"
        ),
        "{}",
        String::from_utf8_lossy(&stderr.seen)
    );
    // The exit key itself never reaches the board.
    assert_eq!(uart.drain(Duration::from_millis(200)), b"printenv\r\x03");

    let restored = tcgetattr(&tty).unwrap();
    assert_eq!(restored.local_modes, cooked.local_modes);
    assert_eq!(restored.input_modes, cooked.input_modes);
    assert_eq!(restored.output_modes, cooked.output_modes);

    assert_eq!(
        log_lines(&log),
        ["U-Boot 2024.01-nanopi-m6", "DRAM:  16 GiB", "=> "]
    );
}

/// For scripts: `--json` streams each received line as an event with its time, standard
/// input (a pipe) goes to the board, the log gets the same lines, and the exit key in
/// the pipe ends the console with a result line and status 0.
#[test]
fn json_session_streams_lines_as_events() {
    let board = Pty::open();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let mut child = console()
        .args(["console", "--json", "--baud", "115200", "--log"])
        .arg(&log)
        .arg(&board.slave)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events = JsonLines::spawn(child.stdout.take().unwrap());
    let opened = events.next();
    assert_eq!(opened["event"], "console-open", "{opened}");
    assert_eq!(opened["port"], board.slave.to_str().unwrap(), "{opened}");
    assert_eq!(opened["baud"], 115200, "{opened}");

    board.write(b"Linux version 6.1.0\r\nnanopi-m6 login: ");
    let line = events.next();
    assert_eq!(line["event"], "console-line", "{line}");
    assert_eq!(line["text"], "Linux version 6.1.0", "{line}");
    assert!(is_rfc3339_millis(line["time"].as_str().unwrap()), "{line}");

    let mut uart = board.reader();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"root\n").unwrap();
    uart.expect(b"root\n");

    stdin.write_all(b"\x1dq").unwrap();
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status}");
    // The unfinished prompt comes out at the end, then the result.
    let prompt = events.next();
    assert_eq!(prompt["text"], "nanopi-m6 login: ", "{prompt}");
    let result = events.next();
    assert_eq!(result["event"], "result", "{result}");
    assert_eq!(result["result"]["ended"], "exit key", "{result}");

    assert_eq!(
        log_lines(&log),
        ["Linux version 6.1.0", "nanopi-m6 login: "]
    );
}

/// A script stops the console with SIGTERM: a clean end, status 0, the log flushed.
#[test]
fn sigterm_ends_the_console_cleanly() {
    let board = Pty::open();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let mut child = console()
        .args(["console", "--json", "--log"])
        .arg(&log)
        .arg(&board.slave)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let events = JsonLines::spawn(child.stdout.take().unwrap());
    assert_eq!(events.next()["event"], "console-open");
    // One write, so the prompt is read with the line before it: once that line's event is
    // out, the console holds the prompt as an unfinished line.
    board.write(b"boot\r\n=> ");
    assert_eq!(events.next()["text"], "boot");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status}");
    assert_eq!(events.next()["text"], "=> ");
    assert_eq!(events.next()["result"]["ended"], "SIGTERM");
    assert_eq!(log_lines(&log), ["boot", "=> "]);
}

/// The adapter unplugged (here: the pty's master closed) is an error that says so.
#[test]
fn a_vanished_port_is_an_error() {
    let board = Pty::open();
    let mut child = console()
        .args(["console", "--json"])
        .arg(&board.slave)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events = JsonLines::spawn(child.stdout.take().unwrap());
    assert_eq!(events.next()["event"], "console-open");
    drop(board);
    let status = wait_for_exit(&mut child);
    assert!(!status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.starts_with("error: lost the serial port"),
        "{stderr}"
    );
    assert!(stderr.contains("unplugged"), "{stderr}");
}

#[test]
fn a_missing_port_says_what_to_do() {
    let out = console()
        .args(["console", "/dev/ttyUSB-rockusb-missing"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: /dev/ttyUSB-rockusb-missing does not exist"),
        "{stderr}"
    );
}

#[test]
fn help_names_the_exit_key_and_the_defaults() {
    let out = console().args(["console", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "Ctrl-] then q",
        "[default: 1500000]",
        "--log <FILE>",
        "RFC 3339",
    ] {
        assert!(help.contains(expected), "{expected:?} not in:\n{help}");
    }
}
