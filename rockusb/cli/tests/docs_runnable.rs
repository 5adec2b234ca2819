//! The shell blocks in README.md and docs/*.md are tested, so the docs cannot go stale.
//!
//! Every fenced `sh` (or `bash`, `shell`) block carries one marker after the language in its
//! info string (docs/user-guide.md, *Writing the docs*, describes them):
//!
//! - `runnable`: run by this test against the virtual NanoPi M6, in order, one document at a
//!   time; a block that exits non-zero, or whose `text output` block (directly after it)
//!   names a line that its output lacks, fails the test with the file, the line and the
//!   output;
//! - `hardware`: needs a board, a serial adapter or a running node; syntax-checked (`bash -n`);
//! - `host`: changes the machine, needs root, the network or a container runtime;
//!   syntax-checked.
//!
//! A shell block without a marker fails the test, so every new example is decided on.
//!
//! Each document's runnable blocks share a working folder holding the files the docs name,
//! made with the real tools (sgdisk, mkfs, xz, binutils, the shared test data): the
//! Talos-shaped image `talos-nanopi-m6.raw.xz` (also `image.raw.xz`), the generic image
//! `metal-arm64.raw.xz`, `u-boot-rockchip.bin`, `u-boot-rockchip-spi.bin`, the vendor
//! `rk3588s-nanopi-m6.dtb`, and the stand-in loader as `standin.bin` and under the real
//! loader's name `rk3588_spl_loader_v1.16.113.bin` (the virtual board runs only the
//! stand-in). `HOME`, `ROCKUSB_VIRTUAL=nanopi-m6` and `ROCKUSB_VIRTUAL_DIR` point into a
//! fresh folder per document (its board `nanopi-m6` has a 128 MiB eMMC), and the `rockusb`
//! under test comes first on `PATH`.

use rockusb_virtual::{BoardConfig, VirtualBoard};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod flash_support;
#[path = "../../../images/tests/generic/mod.rs"]
mod generic;

/// What a shell block's marker says the test does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Runnable,
    Hardware,
    Host,
}

const SHELLS: &[&str] = &["sh", "bash", "shell"];
const MARKERS: &[(&str, Kind)] = &[
    ("runnable", Kind::Runnable),
    ("hardware", Kind::Hardware),
    ("host", Kind::Host),
];
/// The info string of an expected-output block: ```` ```text output ````.
const OUTPUT_INFO: &str = "text output";
/// The wildcard inside an expected-output line.
const ELLIPSIS: char = '…';
/// The eMMC of the docs' virtual board (other boards a block names get the default 32 GiB).
const EMMC_BYTES: u64 = 128 << 20;
/// How long one runnable block may take.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    kind: Kind,
    script: String,
    /// The expected-output block after it: its line and text.
    expected: Option<(usize, String)>,
}

/// A fenced block as written: its opening line, info string and content (the fence's
/// indentation taken off), and the line of its closing fence.
struct Fence {
    line: usize,
    info: String,
    body: String,
    end: usize,
}

fn fences(text: &str) -> Result<Vec<Fence>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        if ticks < 3 {
            i += 1;
            continue;
        }
        let indent = lines[i].len() - trimmed.len();
        let start = i;
        let mut body = String::new();
        i += 1;
        loop {
            let Some(line) = lines.get(i) else {
                return Err(format!("{}: the block is never closed", start + 1));
            };
            let t = line.trim();
            if t.len() >= ticks && t.chars().all(|c| c == '`') {
                break;
            }
            let cut = line.len() - line.trim_start().len();
            body.push_str(&line[cut.min(indent)..]);
            body.push('\n');
            i += 1;
        }
        out.push(Fence {
            line: start + 1,
            info: trimmed[ticks..].trim().to_owned(),
            body,
            end: i + 1,
        });
        i += 1;
    }
    Ok(out)
}

/// The shell blocks of a document, or every problem with its markers ("LINE: what").
fn blocks(text: &str) -> Result<Vec<Block>, Vec<String>> {
    let fences = fences(text).map_err(|e| vec![e])?;
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks: Vec<Block> = Vec::new();
    let mut problems = Vec::new();
    // The closing line of the last runnable block, while an output block may follow it.
    let mut open_runnable: Option<usize> = None;
    for fence in fences {
        let mut words = fence.info.split_whitespace();
        let lang = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        if fence.info == OUTPUT_INFO {
            let follows = open_runnable.filter(|&end| {
                lines[end..fence.line - 1]
                    .iter()
                    .all(|l| l.trim().is_empty())
            });
            match (follows, blocks.last_mut()) {
                (Some(_), Some(block)) => block.expected = Some((fence.line, fence.body)),
                _ => problems.push(format!(
                    "{}: an output block must come right after a runnable block",
                    fence.line
                )),
            }
            open_runnable = None;
            continue;
        }
        open_runnable = None;
        if !SHELLS.contains(&lang) {
            continue;
        }
        let kinds: Vec<Kind> = rest
            .iter()
            .filter_map(|w| MARKERS.iter().find(|(m, _)| m == w).map(|&(_, k)| k))
            .collect();
        let unknown: Vec<&&str> = rest
            .iter()
            .filter(|w| !MARKERS.iter().any(|(m, _)| m == *w))
            .collect();
        if kinds.len() != 1 || !unknown.is_empty() {
            problems.push(format!(
                "{}: a shell block needs exactly one marker (```{lang} runnable, ```{lang} \
                 hardware or ```{lang} host), not {:?}",
                fence.line, fence.info
            ));
            continue;
        }
        if kinds[0] == Kind::Runnable {
            open_runnable = Some(fence.end);
        }
        blocks.push(Block {
            line: fence.line,
            kind: kinds[0],
            script: fence.body,
            expected: None,
        });
    }
    if problems.is_empty() {
        Ok(blocks)
    } else {
        Err(problems)
    }
}

/// `text` with every run of whitespace made one space, and trimmed.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first expected line (in order, `…` matching anything within a line) that `output`
/// lacks.
fn missing_line<'a>(expected: &'a str, output: &str) -> Option<&'a str> {
    let got: Vec<String> = output.lines().map(squeeze).collect();
    let mut got = got.iter();
    for want in expected.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<String> = want
            .split(ELLIPSIS)
            .map(squeeze)
            .filter(|p| !p.is_empty())
            .collect();
        let found = got.any(|line| {
            let mut rest = line.as_str();
            parts.iter().all(|part| match rest.find(part.as_str()) {
                Some(at) => {
                    rest = &rest[at + part.len()..];
                    true
                }
                None => false,
            })
        });
        if !found {
            return Some(want);
        }
    }
    None
}

/// The `rockusb` under test, first on `PATH`, and the files the docs' blocks name.
struct Setup {
    bin_dir: PathBuf,
    fixtures: Option<PathBuf>,
    work: PathBuf,
}

impl Setup {
    fn new(work: &Path, fixtures: Option<PathBuf>) -> Setup {
        let bin_dir = work.join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rockusb"), bin_dir.join("rockusb")).unwrap();
        Setup {
            bin_dir,
            fixtures,
            work: work.to_owned(),
        }
    }
}

#[derive(Default)]
struct Report {
    files: usize,
    runnable: usize,
    hardware: usize,
    host: usize,
    /// Runnable blocks whose output was checked against an output block.
    outputs: usize,
    failures: Vec<String>,
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Checks every shell block of the document `doc` (named `name` in messages).
fn check_doc(doc: &Path, name: &str, setup: &Setup, report: &mut Report) {
    let text = std::fs::read_to_string(doc).unwrap();
    let blocks = match blocks(&text) {
        Ok(blocks) => blocks,
        Err(problems) => {
            for p in problems {
                report.failures.push(format!("{name}:{p}"));
            }
            return;
        }
    };
    report.files += 1;
    let state = setup.work.join("docs").join(name.replace('/', "_"));
    let (cwd, home, boards) = (state.join("work"), state.join("home"), state.join("boards"));
    for dir in [&cwd, &home, &boards] {
        std::fs::create_dir_all(dir).unwrap();
    }
    // The board the blocks use, with an eMMC small enough to back up in a moment.
    VirtualBoard::open_or_create(&boards.join("nanopi-m6"), || BoardConfig {
        emmc_bytes: EMMC_BYTES,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    if let Some(fixtures) = &setup.fixtures {
        for file in rockusb_testkit::files_in(fixtures) {
            std::fs::copy(&file, cwd.join(file.file_name().unwrap())).unwrap();
        }
    }
    let path = std::env::join_paths(std::iter::once(setup.bin_dir.clone()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    for block in blocks {
        let at = format!("{name}:{}", block.line);
        match block.kind {
            Kind::Hardware | Kind::Host => {
                if block.kind == Kind::Hardware {
                    report.hardware += 1;
                } else {
                    report.host += 1;
                }
                let out = Command::new("bash")
                    .args(["-n", "-c", &block.script])
                    .output()
                    .unwrap();
                if !out.status.success() {
                    report.failures.push(format!(
                        "{at}: the block is not valid shell:\n{}{}",
                        indent(&block.script),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            Kind::Runnable => {
                report.runnable += 1;
                let log = state.join("output.txt");
                let file = File::create(&log).unwrap();
                let mut cmd = Command::new("bash");
                cmd.args(["--noprofile", "--norc", "-e", "-o", "pipefail", "-c"])
                    .arg(&block.script)
                    .current_dir(&cwd)
                    .env("PATH", &path)
                    .env("HOME", &home)
                    .env("ROCKUSB_VIRTUAL", "nanopi-m6")
                    .env("ROCKUSB_VIRTUAL_DIR", &boards)
                    .env("LC_ALL", "C")
                    .env("TERM", "dumb")
                    .env_remove("ROCKUSB_LOADER_PATH")
                    .env_remove("ROCKUSB_VIRTUAL_FAULTS")
                    .env_remove("ROCKUSB_TESTDATA")
                    .stdin(Stdio::null())
                    .stdout(file.try_clone().unwrap())
                    .stderr(file);
                std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
                let started = Instant::now();
                let status = run_with_timeout(&mut cmd);
                println!("{at}: {:.1} s", started.elapsed().as_secs_f64());
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                let problem = match status {
                    None => Some(format!(
                        "did not finish within {} s",
                        BLOCK_TIMEOUT.as_secs()
                    )),
                    Some(s) if !s.success() => Some(format!("failed ({s})")),
                    Some(_) => block.expected.as_ref().and_then(|(line, text)| {
                        report.outputs += 1;
                        missing_line(text, &output).map(|want| {
                            format!(
                                "printed no line matching {want:?} (the output block at line {line})"
                            )
                        })
                    }),
                };
                if let Some(problem) = problem {
                    report.failures.push(format!(
                        "{at}: the runnable block {problem}:\n{}--- its output ---\n{}",
                        indent(&block.script),
                        indent(&output)
                    ));
                }
            }
        }
    }
}

/// Runs `cmd` (in its own process group), killing the group after [`BLOCK_TIMEOUT`];
/// `None` when it was killed.
fn run_with_timeout(cmd: &mut Command) -> Option<std::process::ExitStatus> {
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + BLOCK_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// README.md and every docs/*.md, as (path, name relative to the workspace).
fn documents() -> Vec<(PathBuf, String)> {
    let root = rockusb_testkit::workspace_root();
    let mut docs = vec![(root.join("README.md"), "README.md".to_owned())];
    for path in rockusb_testkit::files_in(&root.join("docs")) {
        if path.extension().is_some_and(|e| e == "md") {
            let name = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
            docs.push((path, name));
        }
    }
    docs
}

/// Makes the files the docs name in `dir`; `None` (reported as skipped, or a failure under
/// CI) when a tool or the shared test data is missing.
fn fixtures(test: &str, dir: &Path) -> Option<PathBuf> {
    if !flash_support::tools(test)
        || !generic::TOOLS
            .iter()
            .all(|(tool, package)| rockusb_testkit::tool(test, tool, package))
        || !rockusb_testkit::tool(test, "fdtget", "device-tree-compiler")
    {
        return None;
    }
    let testdata = rockusb_testkit::testdata(test)?;
    let dtb = rockusb_testkit::testdata_file(
        test,
        "dtb/nanopi-m6__friendlyelec-vendor__rk3588s-nanopi-m6.dtb",
    )?;
    let scratch = dir.join("scratch");
    let files = dir.join("fixtures");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::create_dir_all(&files).unwrap();

    let talos = flash_support::xz(&flash_support::talos_image(&scratch));
    std::fs::copy(&talos, files.join("talos-nanopi-m6.raw.xz")).unwrap();
    std::fs::copy(&talos, files.join("image.raw.xz")).unwrap();
    // The generic image with its STATE partition zeroed: its 8 MiB of random bytes would
    // only make every xz step slower (the image's own compression, and adapt's).
    let generic = generic::generic_image(&scratch);
    generic::write_at(
        &generic,
        generic::STATE_LBA * 512,
        &vec![0; (generic::STATE_MIB * generic::MIB) as usize],
    );
    let generic = flash_support::xz(&generic);
    std::fs::copy(&generic, files.join("metal-arm64.raw.xz")).unwrap();
    std::fs::write(files.join("u-boot-rockchip.bin"), generic::uboot()).unwrap();
    std::fs::write(
        files.join("u-boot-rockchip-spi.bin"),
        rockusb_testkit::uboot::spi_image(&testdata),
    )
    .unwrap();
    std::fs::copy(&dtb, files.join("rk3588s-nanopi-m6.dtb")).unwrap();
    let standin = flash_support::standin(&scratch);
    std::fs::copy(&standin, files.join("standin.bin")).unwrap();
    std::fs::copy(&standin, files.join("rk3588_spl_loader_v1.16.113.bin")).unwrap();
    Some(files)
}

#[test]
fn every_runnable_block_in_the_docs_runs_against_the_virtual_board() {
    let test = "every_runnable_block_in_the_docs_runs";
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let Some(fixtures) = fixtures(test, dir.path()) else {
        return;
    };
    println!("fixtures: {:.1} s", started.elapsed().as_secs_f64());
    let setup = Setup::new(dir.path(), Some(fixtures));
    let mut report = Report::default();
    for (path, name) in documents() {
        check_doc(&path, &name, &setup, &mut report);
    }
    println!(
        "docs: ran {} runnable blocks from {} documents ({} with their output checked); \
         syntax-checked {} hardware and {} host blocks",
        report.runnable, report.files, report.outputs, report.hardware, report.host
    );
    assert!(
        report.failures.is_empty(),
        "{} problem(s) in the docs:\n\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
    // The docs lean on runnable examples; losing most of them is a regression too.
    assert!(
        report.runnable >= 30,
        "only {} runnable blocks",
        report.runnable
    );
    assert!(
        report.outputs >= 20,
        "only {} output blocks",
        report.outputs
    );
}

/// A temporary document with a broken block of each kind: the harness names each one with
/// its file and line and shows what the command printed.
#[test]
fn a_broken_block_in_a_doc_fails_the_harness() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("broken.md");
    let text = "\
# A broken doc

```sh runnable
rockusb loader standin -o standin.bin
```

```sh runnable
rockusb flash no-such-image.raw.xz
```

```sh runnable
rockusb boot standin.bin
```

```text output
booted: a board that does not exist
```

```sh hardware
if true; then
```

```sh
rockusb list
```

```sh runnable
rockusb list
```

```text output
virtual
```

```text output
a second output block
```
";
    std::fs::write(&doc, text).unwrap();
    let setup = Setup::new(dir.path(), None);
    let mut report = Report::default();
    check_doc(&doc, "broken.md", &setup, &mut report);
    // The marker problems (the unmarked block, the stray output block) are found before
    // anything runs.
    assert_eq!(report.runnable, 0);
    assert_eq!(report.failures.len(), 2, "{:#?}", report.failures);
    assert!(
        report.failures[0].starts_with("broken.md:23: "),
        "{}",
        report.failures[0]
    );
    assert!(report.failures[0].contains("exactly one marker"));
    assert!(
        report.failures[1].starts_with("broken.md:35: "),
        "{}",
        report.failures[1]
    );
    assert!(report.failures[1].contains("right after a runnable block"));

    // Without them, every block runs and each broken one is reported.
    let text = text.replace("```sh\nrockusb list", "```sh host\nrockusb list");
    let text = &text[..text.find("```text output\na second").unwrap()];
    std::fs::write(&doc, text).unwrap();
    let mut report = Report::default();
    check_doc(&doc, "broken.md", &setup, &mut report);
    println!(
        "broken.md: ran {} runnable blocks; {} failures",
        report.runnable,
        report.failures.len()
    );
    assert_eq!((report.runnable, report.hardware, report.host), (4, 1, 1));
    let failures = &report.failures;
    assert_eq!(failures.len(), 3, "{failures:#?}");
    // The command that fails: its line, its exit status and rockusb's own message.
    assert!(
        failures[0].starts_with("broken.md:7: the runnable block failed (exit status: 1)"),
        "{}",
        failures[0]
    );
    assert!(failures[0].contains("rockusb flash no-such-image.raw.xz"));
    assert!(
        failures[0].contains("no-such-image.raw.xz"),
        "{}",
        failures[0]
    );
    assert!(failures[0].contains("--- its output ---"));
    // The command that works but prints something else than the doc says.
    assert!(failures[1].starts_with("broken.md:11: the runnable block printed no line matching \"booted: a board that does not exist\" (the output block at line 15)"), "{}", failures[1]);
    assert!(failures[1].contains("booted: "), "{}", failures[1]);
    // The hardware block is only parsed, and it does not parse.
    assert!(
        failures[2].starts_with("broken.md:19: the block is not valid shell"),
        "{}",
        failures[2]
    );
    assert!(failures[2].contains("syntax error"), "{}", failures[2]);
}

#[test]
fn expected_output_lines_match_in_order_with_ellipses() {
    let output =
        "flash: 40 MiB written in 1.2 s\nverified 40 MiB\n  1-1   2207:350b  RK3588  loader\n";
    assert_eq!(
        missing_line("flash: … written in …\nverified", output),
        None
    );
    assert_eq!(missing_line("1-1 2207:350b RK3588 loader", output), None);
    assert_eq!(
        missing_line("verified\nflash: …", output),
        Some("flash: …"),
        "lines are matched in order"
    );
    assert_eq!(
        missing_line("written … flash", output),
        Some("written … flash")
    );
}
