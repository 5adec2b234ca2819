//! Man pages and completion scripts made by `rockusb man` and `rockusb completions`:
//! every page renders with `man -l` and no warning, and the bash script completes in a
//! real bash session.

use rockusb_testkit::tool;
use std::path::Path;
use std::process::{Command, Stdio};

fn rockusb(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_rockusb"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rockusb {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Renders a page with `man -l`, failing on any warning from groff or man.
fn render(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "man -l {} failed ({}): {stderr}",
        page.display(),
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_man_page_renders() {
    if !tool("every_man_page_renders", "man", "man-db") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("man1");
    let folder_arg = folder.to_str().unwrap();
    rockusb(&["man", "--output", folder_arg]);

    let mut pages: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for expected in [
        "rockusb.1",
        "rockusb-flash.1",
        "rockusb-console.1",
        "rockusb-completions.1",
        "rockusb-man.1",
        "rockusb-image-adapt.1",
        "rockusb-loader-find.1",
    ] {
        assert!(
            pages.iter().any(|p| p == expected),
            "{expected} not in {pages:?}"
        );
    }
    for page in &pages {
        let text = render(&folder.join(page));
        let name = page.trim_end_matches(".1");
        assert!(text.contains("NAME"), "{page}:\n{text}");
        assert!(text.contains(name), "{page} does not name {name}:\n{text}");
    }
    let console = render(&folder.join("rockusb-console.1"));
    assert!(console.contains("Ctrl-] then q"), "{console}");
}

#[test]
fn man_without_output_prints_the_main_page() {
    if !tool("man_without_output_prints_the_main_page", "man", "man-db") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("rockusb.1");
    std::fs::write(&page, rockusb(&["man"])).unwrap();
    let text = render(&page);
    for subcommand in ["flash", "console", "completions", "man"] {
        assert!(text.contains(subcommand), "{subcommand} not in:\n{text}");
    }
}

/// Asks the bash completion for the words after `line` (the command line typed so far,
/// the cursor at its end), as bash would when Tab is pressed.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let session = r#"
        set -u
        source "$1"
        shift
        # The function `complete -p` names for rockusb, as bash would call it.
        spec=$(complete -p rockusb)
        function=${spec##*-F }
        function=${function%% *}
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        "$function" rockusb "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", session, "bash"])
        .arg(script)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the bash session failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_is_valid_and_completes_subcommands_and_options() {
    if !tool(
        "bash_completion_is_valid_and_completes_subcommands_and_options",
        "bash",
        "bash",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rockusb.bash");
    std::fs::write(&script, rockusb(&["completions", "bash"])).unwrap();

    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );

    // `fl` is the start of two subcommands; `flas` of one.
    assert_eq!(
        bash_complete(&script, &["rockusb", "fl"]),
        ["flash", "fleet"]
    );
    assert_eq!(bash_complete(&script, &["rockusb", "flas"]), ["flash"]);
    assert_eq!(
        bash_complete(&script, &["rockusb", "console", "--ba"]),
        ["--baud"]
    );
    assert_eq!(
        bash_complete(&script, &["rockusb", "completions", "z"]),
        ["zsh"]
    );
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = String::from_utf8(rockusb(&["completions", shell])).unwrap();
        assert!(
            script.contains("flash") && script.contains("console"),
            "the {shell} script lacks subcommands"
        );
    }
}
