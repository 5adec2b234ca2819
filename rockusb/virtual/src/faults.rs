//! Faults injected into a virtual board's data commands, so the host's retries and error
//! reports can be tested the way real benches fail (cables, hubs, extenders).
//!
//! Set `ROCKUSB_VIRTUAL_FAULTS` (read when a board is opened, so it works for the
//! `rockusb` binary and through the libusb shim alike) to a comma-separated list:
//! - `KIND@N`: the Nth command the fault can hit meets it, counted from 1 in each process
//!   (a host that re-opens the board after a disconnect keeps counting): `timeout`,
//!   `stall`, `slow`, `disconnect` and `maskrom` count every READ_LBA and WRITE_LBA,
//!   `failed`, `lost` and `medium` count writes and `corrupt` counts reads;
//! - `random:SEED:PERMILLE[:KIND+KIND…]`: each data command meets a fault with that
//!   probability, its kind chosen at random among those listed (default: `timeout`,
//!   `stall`, `failed`, `corrupt`); the same seed gives the same faults.
//!
//! Either form may start with a board's name and a colon to hit only that board:
//! `b:failed@3` fails the third write to the board `b` (its folder's name) and no other,
//! so one board of a fleet can fail while the others, served by the same process, finish.
//!
//! Kinds: `timeout` (the command block is never answered: the endpoint NAKs until the
//! host recovers it), `stall` (the command block is refused with a stall), `failed` (a
//! write's status block says "failed" and nothing is stored), `corrupt` (a read's data
//! arrives with one byte changed, as a bad link would deliver it), `lost` (a write is
//! acknowledged as good but its data never reaches the medium: a failing eMMC, or a short
//! write the device did not report; only reading back finds it), `slow` (the command is
//! answered 1.5 s late, as a busy eMMC does), `disconnect` (the board
//! drops off the bus mid-command and re-enumerates at a new address on the same port, its
//! loader still running: a hub or cable glitch), `maskrom` (the same, but the board comes
//! back in MaskROM: a brown-out reset lost the loader and DRAM; the storage keeps what
//! reached it), `medium` (a write's middle byte reaches the storage changed, as a failing
//! eMMC or a damaged buffer would store it, while the status block still says good: only a
//! read-back, or the loader's write-parity check, finds it).
//!
//! Every fault injected is appended to `faults.log` in the board's folder (kind and the
//! command's first sector), so a test or soak run can count them.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

pub const ENV_FAULTS: &str = "ROCKUSB_VIRTUAL_FAULTS";

/// What goes wrong with one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Timeout,
    Stall,
    Failed,
    Corrupt,
    Lost,
    Slow,
    Disconnect,
    Maskrom,
    Medium,
}

/// How late a `slow` command is answered: well inside the host's 5 s timeout.
pub const SLOW_COMMAND: std::time::Duration = std::time::Duration::from_millis(1500);

impl FaultKind {
    /// The kinds `random:` chooses from unless told otherwise.
    const DEFAULT_RANDOM: [FaultKind; 4] = [
        FaultKind::Timeout,
        FaultKind::Stall,
        FaultKind::Failed,
        FaultKind::Corrupt,
    ];

    /// Whether a command moving data that way can meet this fault.
    pub fn applies_to(self, direction: Direction) -> bool {
        match self {
            FaultKind::Failed | FaultKind::Lost | FaultKind::Medium => {
                direction == Direction::Write
            }
            FaultKind::Corrupt => direction == Direction::Read,
            _ => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Timeout => "timeout",
            FaultKind::Stall => "stall",
            FaultKind::Failed => "failed",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Lost => "lost",
            FaultKind::Slow => "slow",
            FaultKind::Disconnect => "disconnect",
            FaultKind::Maskrom => "maskrom",
            FaultKind::Medium => "medium",
        }
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "timeout" => Ok(FaultKind::Timeout),
            "stall" => Ok(FaultKind::Stall),
            "failed" => Ok(FaultKind::Failed),
            "corrupt" => Ok(FaultKind::Corrupt),
            "lost" => Ok(FaultKind::Lost),
            "slow" => Ok(FaultKind::Slow),
            "disconnect" => Ok(FaultKind::Disconnect),
            "maskrom" => Ok(FaultKind::Maskrom),
            "medium" => Ok(FaultKind::Medium),
            other => Err(format!(
                "unknown fault {other:?}: use timeout, stall, failed, corrupt, lost, slow, disconnect, maskrom or medium"
            )),
        }
    }
}

/// Which way a data command moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// The faults planned for one connection, and how far it has got.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    at: Vec<(u64, FaultKind)>,
    random: Option<(u64, u32)>,
    random_kinds: Vec<FaultKind>,
    commands: u64,
    reads: u64,
    writes: u64,
}

/// The faults of the board in `dir` for this process, shared by every handle opened on
/// it: a host that re-opens the board after a disconnect meets the faults planned for
/// later commands, not the same ones again.
pub fn for_board(dir: &Path) -> Arc<Mutex<Faults>> {
    static BOARDS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<Faults>>>>> = OnceLock::new();
    let mut boards = BOARDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    boards
        .entry(dir.to_path_buf())
        .or_insert_with(|| {
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
            Arc::new(Mutex::new(Faults::from_env_for(name)))
        })
        .clone()
}

/// Appends one injected fault to the board's `faults.log` (best effort: the log is for
/// counting, and a full disk must not turn into a different fault).
pub fn log(dir: &Path, kind: FaultKind, lba: u32) {
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("faults.log"))
    {
        let _ = writeln!(file, "{} {lba}", kind.name());
    }
}

impl Faults {
    /// The faults `ROCKUSB_VIRTUAL_FAULTS` asks for (none when unset; a malformed list is
    /// reported on stderr and ignored rather than silently half-applied).
    pub fn from_env() -> Self {
        Self::from_env_for("")
    }

    /// [`Faults::from_env`] for the board called `board`: items naming another board
    /// are left out.
    pub fn from_env_for(board: &str) -> Self {
        match std::env::var(ENV_FAULTS) {
            Ok(spec) => Self::parse_for(&spec, board).unwrap_or_else(|e| {
                eprintln!("{ENV_FAULTS}: {e}; no faults injected");
                Faults::default()
            }),
            Err(_) => Faults::default(),
        }
    }

    /// Parses a list of faults, every item applying (board names or not).
    pub fn parse(spec: &str) -> Result<Self, String> {
        Self::parse_for(spec, None)
    }

    /// Parses a list of faults for the board called `board`: items that name another
    /// board (`NAME:KIND@N`) are checked but left out. With `None`, every item applies.
    pub fn parse_for<'a>(spec: &str, board: impl Into<Option<&'a str>>) -> Result<Self, String> {
        let board = board.into();
        let mut faults = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (target, item) = match item.split_once(':') {
                Some((name, rest)) if name != "random" => (Some(name.trim()), rest.trim()),
                _ => (None, item),
            };
            let mut parsed = Faults::parse_item(item, Faults::default())?;
            if board.is_some() && target.is_some() && target != board {
                continue;
            }
            if parsed.random.is_some() {
                faults.random = parsed.random;
                faults.random_kinds = std::mem::take(&mut parsed.random_kinds);
            }
            faults.at.append(&mut parsed.at);
        }
        Ok(faults)
    }

    /// Parses one item (`KIND@N` or `random:…`, without a board name).
    fn parse_item(item: &str, mut faults: Faults) -> Result<Faults, String> {
        if let Some(rest) = item.strip_prefix("random:") {
            let mut parts = rest.splitn(3, ':');
            let (Some(seed), Some(permille)) = (parts.next(), parts.next()) else {
                return Err(format!("{item:?}: use random:SEED:PERMILLE[:KIND+KIND…]"));
            };
            faults.random_kinds = match parts.next() {
                Some(kinds) => kinds.split('+').map(str::parse).collect::<Result<_, _>>()?,
                None => FaultKind::DEFAULT_RANDOM.to_vec(),
            };
            let seed: u64 = seed.parse().map_err(|_| format!("{item:?}: bad seed"))?;
            let permille: u32 = permille
                .parse()
                .ok()
                .filter(|p| *p <= 1000)
                .ok_or_else(|| format!("{item:?}: the rate is 0 to 1000 per mille"))?;
            faults.random = Some((seed | 1, permille));
            return Ok(faults);
        }
        let (kind, n) = item
            .split_once('@')
            .ok_or_else(|| format!("{item:?}: use KIND@N"))?;
        let n: u64 = n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{item:?}: N counts data commands from 1"))?;
        faults.at.push((n, kind.parse()?));
        Ok(faults)
    }

    /// Counts a data command and says which fault, if any, it meets.
    pub fn next_command(&mut self, direction: Direction) -> Option<FaultKind> {
        self.commands += 1;
        let count = match direction {
            Direction::Read => &mut self.reads,
            Direction::Write => &mut self.writes,
        };
        *count += 1;
        let (commands, own) = (self.commands, *count);
        let hit = |&(n, kind): &(u64, FaultKind)| match kind {
            FaultKind::Timeout
            | FaultKind::Stall
            | FaultKind::Slow
            | FaultKind::Disconnect
            | FaultKind::Maskrom => n == commands,
            FaultKind::Failed | FaultKind::Lost | FaultKind::Medium => {
                direction == Direction::Write && n == own
            }
            FaultKind::Corrupt => direction == Direction::Read && n == own,
        };
        if let Some(&(_, kind)) = self.at.iter().find(|f| hit(f)) {
            return Some(kind);
        }
        let (state, permille) = self.random.as_mut()?;
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let roll = (*state % 1000) as u32;
        // Only kinds that can befall this command (a read is not "lost", a write not
        // "corrupt"), so every fault counted is a fault the host met.
        let kinds: Vec<FaultKind> = self
            .random_kinds
            .iter()
            .copied()
            .filter(|k| k.applies_to(direction))
            .collect();
        (roll < *permille && !kinds.is_empty())
            .then(|| kinds[(*state >> 32) as usize % kinds.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_faults_hit_their_command_and_random_ones_repeat_by_seed() {
        use Direction::{Read, Write};
        let mut f = Faults::parse("timeout@2, corrupt@2, failed@1, medium@2").unwrap();
        let seen: Vec<_> = [Read, Read, Write, Read, Write]
            .into_iter()
            .map(|d| f.next_command(d))
            .collect();
        assert_eq!(
            seen,
            [
                None,
                Some(FaultKind::Timeout),
                Some(FaultKind::Failed),
                None,
                Some(FaultKind::Medium)
            ]
        );
        let run = |seed| {
            let mut f = Faults::parse(&format!("random:{seed}:100")).unwrap();
            (0..1000).map(|_| f.next_command(Write)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let hits = run(7).iter().filter(|f| f.is_some()).count();
        assert!((50..150).contains(&hits), "{hits} faults at 10 %");
        assert!(Faults::parse("melt@1").is_err());
        assert!(Faults::parse("timeout@0").is_err());
        assert!(Faults::parse("random:1:2000").is_err());
        let mut only = Faults::parse("random:3:1000:disconnect+maskrom").unwrap();
        assert!((0..100).all(|_| matches!(
            only.next_command(Write),
            Some(FaultKind::Disconnect | FaultKind::Maskrom)
        )));
        assert!(Faults::parse("random:3:10:melt").is_err());
    }

    #[test]
    fn a_fault_naming_a_board_hits_only_that_board() {
        use Direction::Write;
        let spec = "b:failed@2, timeout@1, c:random:5:1000:failed";
        let mut b = Faults::parse_for(spec, "b").unwrap();
        assert_eq!(b.next_command(Write), Some(FaultKind::Timeout));
        assert_eq!(b.next_command(Write), Some(FaultKind::Failed));
        assert_eq!(b.next_command(Write), None);
        let mut a = Faults::parse_for(spec, "a").unwrap();
        assert_eq!(a.next_command(Write), Some(FaultKind::Timeout));
        assert_eq!(a.next_command(Write), None);
        let mut c = Faults::parse_for(spec, "c").unwrap();
        c.next_command(Write);
        assert_eq!(c.next_command(Write), Some(FaultKind::Failed));
        // A bad item is refused whichever board it names.
        assert!(Faults::parse_for("x:melt@1", "a").is_err());
    }
}
