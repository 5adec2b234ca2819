//! docs/errors.md quotes the CLI's error messages: each quote must still be found in the
//! code, so the table cannot go stale.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file's text under `dir`, with string continuations (`\` at a line's end and
/// the next line's indentation) joined, as the compiled strings read.
fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut joined = String::with_capacity(text.len());
            let mut lines = text.lines().peekable();
            while let Some(line) = lines.next() {
                match line.strip_suffix('\\') {
                    Some(head) => {
                        joined.push_str(head);
                        if let Some(next) = lines.next() {
                            joined.push_str(next.trim_start());
                            joined.push('\n');
                        }
                    }
                    None => {
                        joined.push_str(line);
                        joined.push('\n');
                    }
                }
            }
            out.push_str(&joined);
        }
    }
}

#[test]
fn every_message_in_the_error_table_is_in_the_code() {
    let root = workspace();
    let doc = std::fs::read_to_string(root.join("docs/errors.md")).unwrap();
    let mut code = String::new();
    for dir in [
        "rockusb/src",
        "rockusb/cli/src",
        "images/src",
        "loaders/src",
        "installer/src",
    ] {
        sources(&root.join(dir), &mut code);
    }
    let quotes: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    assert!(quotes.len() >= 20, "the table lost rows: {quotes:?}");
    let missing: Vec<&&str> = quotes.iter().filter(|q| !code.contains(**q)).collect();
    assert!(
        missing.is_empty(),
        "docs/errors.md quotes messages the code no longer has: {missing:?}"
    );
}
