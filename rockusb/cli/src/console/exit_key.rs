//! The exit key: Ctrl-] then `q`. Everything else typed goes to the board, Ctrl-C and
//! Ctrl-D included, so the key must be one a board's shell does not use; Ctrl-] is
//! telnet's escape for the same reason.

/// Ctrl-], the escape byte.
pub const ESCAPE: u8 = 0x1d;

/// How the exit key is written in help texts and messages.
pub const EXIT_KEY_TEXT: &str = "Ctrl-] then q";

/// Finds the exit key in what is typed, across reads (Ctrl-] may end one read and `q`
/// start the next).
#[derive(Debug, Default)]
pub struct ExitKey {
    escaped: bool,
}

/// What typed bytes amount to.
#[derive(Debug, PartialEq, Eq)]
pub struct Typed {
    /// The bytes to send to the board.
    pub send: Vec<u8>,
    /// The exit key was pressed; bytes typed after it are dropped.
    pub exit: bool,
}

impl ExitKey {
    /// Splits typed bytes into what goes to the board and whether to exit. After Ctrl-],
    /// `q` or `Q` exits, a second Ctrl-] sends one Ctrl-], and any other key sends
    /// Ctrl-] and that key.
    pub fn feed(&mut self, typed: &[u8]) -> Typed {
        let mut send = Vec::with_capacity(typed.len());
        for &byte in typed {
            if self.escaped {
                self.escaped = false;
                match byte {
                    b'q' | b'Q' => return Typed { send, exit: true },
                    ESCAPE => send.push(ESCAPE),
                    other => send.extend_from_slice(&[ESCAPE, other]),
                }
            } else if byte == ESCAPE {
                self.escaped = true;
            } else {
                send.push(byte);
            }
        }
        Typed { send, exit: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(send: &[u8], exit: bool) -> Typed {
        Typed {
            send: send.to_vec(),
            exit,
        }
    }

    #[test]
    fn plain_keys_pass_through() {
        let mut key = ExitKey::default();
        assert_eq!(
            key.feed(b"ls -l\r\x03\x04"),
            typed(b"ls -l\r\x03\x04", false)
        );
    }

    #[test]
    fn escape_then_q_exits_and_drops_the_rest() {
        let mut key = ExitKey::default();
        assert_eq!(key.feed(b"ab\x1dqcd"), typed(b"ab", true));
    }

    #[test]
    fn escape_and_q_may_come_in_separate_reads() {
        let mut key = ExitKey::default();
        assert_eq!(key.feed(b"x\x1d"), typed(b"x", false));
        assert_eq!(key.feed(b"Q"), typed(b"", true));
    }

    #[test]
    fn escape_twice_sends_one_escape_and_other_keys_send_both() {
        let mut key = ExitKey::default();
        assert_eq!(key.feed(b"\x1d\x1d"), typed(b"\x1d", false));
        assert_eq!(key.feed(b"\x1dx"), typed(b"\x1dx", false));
    }
}
