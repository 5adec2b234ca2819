//! What a UKI's kernel command line means for a NanoPi M6: whether the machine will join
//! Omni, and whether the debug UART will show anything.
//!
//! The command line is part of the UKI (and of its signature), so it cannot be changed
//! here: what is missing has to be added in the Image Factory schematic.

/// The M6's debug UART: UART2 at 1.5 Mbaud, the console its U-Boot uses.
pub const M6_SERIAL_CONSOLE: &str = "console=ttyS2,1500000n8";

/// The kernel command line split into arguments (double quotes group spaces, as the
/// kernel's own parser does).
pub fn arguments(cmdline: &str) -> Vec<&str> {
    let mut args = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in cmdline.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    args.push(&cmdline[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        args.push(&cmdline[s..]);
    }
    args
}

/// The parts of the command line that matter for running the image on an M6 with Omni.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdlineAssessment {
    /// The value of `siderolink.api=` (Omni's join URL, including its join token).
    pub siderolink_api: Option<String>,
    /// `talos.events.sink=` is present (Omni receives the machine's events).
    pub events_sink: bool,
    /// `talos.logging.kernel=` is present (Omni receives kernel logs).
    pub logging_kernel: bool,
    /// `console=ttyS2,1500000n8` is present.
    pub serial_console: bool,
}

/// One thing the user should know, as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub text: String,
}

impl CmdlineAssessment {
    pub fn new(cmdline: &str) -> Self {
        let args = arguments(cmdline);
        let value = |key: &str| {
            args.iter()
                .rev()
                .find_map(|a| a.strip_prefix(key).map(str::to_string))
        };
        Self {
            siderolink_api: value("siderolink.api="),
            events_sink: value("talos.events.sink=").is_some(),
            logging_kernel: value("talos.logging.kernel=").is_some(),
            serial_console: args.contains(&M6_SERIAL_CONSOLE),
        }
    }

    /// True when the machine will connect to Omni on first boot.
    pub fn joins_omni(&self) -> bool {
        self.siderolink_api.is_some()
    }

    /// What to tell the user, warnings first.
    pub fn notes(&self) -> Vec<Note> {
        let mut notes = Vec::new();
        let fixed =
            "the UKI's command line is part of the image and cannot be changed by this tool";
        if !self.serial_console {
            notes.push(Note {
                warning: true,
                text: format!(
                    "the kernel command line has no {M6_SERIAL_CONSOLE}, so the M6's debug UART stays silent once Linux starts; add it as an extra kernel argument in the Image Factory schematic and download the image again ({fixed})"
                ),
            });
        }
        if self.joins_omni() {
            let missing: Vec<&str> = [
                (!self.events_sink).then_some("talos.events.sink="),
                (!self.logging_kernel).then_some("talos.logging.kernel="),
            ]
            .into_iter()
            .flatten()
            .collect();
            if missing.is_empty() {
                notes.push(Note {
                    warning: false,
                    text: "the image joins Omni on first boot (siderolink.api=, with events and kernel logs sent to Omni)".into(),
                });
            } else {
                notes.push(Note {
                    warning: true,
                    text: format!(
                        "the image joins Omni (siderolink.api=) but lacks {}: Omni will miss the machine's events or kernel logs; download the image from Omni again ({fixed})",
                        missing.join(" and ")
                    ),
                });
            }
        } else {
            notes.push(Note {
                warning: false,
                text: "the image does not join Omni (no siderolink.api= on its kernel command line); download it from Omni if the machine should join".into(),
            });
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_kernel_and_keeps_quoted_spaces() {
        assert_eq!(
            arguments("  a=1  b=\"x y\" \"c d\"=2\tend "),
            ["a=1", "b=\"x y\"", "\"c d\"=2", "end"]
        );
        assert!(arguments("").is_empty());
    }

    #[test]
    fn an_omni_image_with_serial_console_needs_no_warning() {
        let a = CmdlineAssessment::new(
            "talos.platform=metal console=ttyS2,1500000n8 siderolink.api=https://o.example:8090/?jointoken=t \
             talos.events.sink=[fdae::1]:8090 talos.logging.kernel=tcp://[fdae::1]:8092",
        );
        assert!(a.joins_omni() && a.events_sink && a.logging_kernel && a.serial_console);
        assert_eq!(
            a.siderolink_api.as_deref(),
            Some("https://o.example:8090/?jointoken=t")
        );
        assert!(a.notes().iter().all(|n| !n.warning));
    }

    #[test]
    fn missing_console_and_omni_extras_are_warned_about() {
        let a = CmdlineAssessment::new("console=ttyS2,115200 siderolink.api=https://o.example");
        assert!(!a.serial_console, "another baud rate is not the M6 console");
        let notes = a.notes();
        assert_eq!(notes.iter().filter(|n| n.warning).count(), 2);
        assert!(notes[0].text.contains("Image Factory schematic"));
        assert!(notes[0].text.contains("cannot be changed"));
        assert!(
            notes[1]
                .text
                .contains("talos.events.sink= and talos.logging.kernel=")
        );

        let plain = CmdlineAssessment::new("talos.platform=metal console=ttyS2,1500000n8");
        assert!(!plain.joins_omni());
        assert!(plain.notes().iter().all(|n| !n.warning));
    }
}
