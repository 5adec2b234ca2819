//! Commands this build cannot run on the system it was built for, refused in one voice.

/// The system this build runs on, as its users call it.
#[cfg(any(test, not(target_os = "linux")))]
pub fn system_name(os: &str) -> &str {
    match os {
        "windows" => "Windows",
        "macos" => "macOS",
        "linux" => "Linux",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

/// The error for a command that does not work on this system (yet), naming the command, the
/// system and what to do instead.
#[cfg(any(test, not(target_os = "linux")))]
pub fn unsupported(command: &str, instead: &str) -> anyhow::Error {
    anyhow::anyhow!(unsupported_message(command, std::env::consts::OS, instead))
}

#[cfg(any(test, not(target_os = "linux")))]
fn unsupported_message(command: &str, os: &str, instead: &str) -> String {
    format!(
        "`rockusb {command}` is not supported on {} yet; {instead}",
        system_name(os)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_command_and_the_system() {
        assert_eq!(
            unsupported_message("disks", "windows", "it works on Linux"),
            "`rockusb disks` is not supported on Windows yet; it works on Linux"
        );
        assert!(
            unsupported("console", "x")
                .to_string()
                .starts_with("`rockusb console` is not supported on ")
        );
    }
}
