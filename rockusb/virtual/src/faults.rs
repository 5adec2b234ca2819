//! Faults injected into a virtual board's data commands, so the host's retries and error
//! reports can be tested the way real benches fail (cables, hubs, extenders).
//!
//! Set `ROCKUSB_VIRTUAL_FAULTS` (read when a board is opened, so it works for the
//! `rockusb` binary and through the libusb shim alike) to a comma-separated list:
//! - `KIND@N`: the Nth command the fault can hit meets it, counted from 1 on each
//!   connection: `timeout` and `stall` count every READ_LBA and WRITE_LBA, `failed` and
//!   `medium` count writes and `corrupt` counts reads;
//! - `random:SEED:PERMILLE`: each data command meets a fault with that probability, its
//!   kind chosen at random; the same seed gives the same faults.
//!
//! Kinds: `timeout` (the command block is never answered: the endpoint NAKs until the
//! host recovers it), `stall` (the command block is refused with a stall), `failed` (a
//! write's status block says "failed" and nothing is stored), `corrupt` (a read's data
//! arrives with one byte changed, as a bad link would deliver it), `medium` (a write's
//! middle byte reaches the storage changed, as a failing eMMC or a damaged buffer would
//! store it, while the status block still says good: only a read-back, or the loader's
//! write-parity check, can tell). `random` never picks `medium`, so a seed keeps giving the
//! link faults it always gave.

use std::str::FromStr;

pub const ENV_FAULTS: &str = "ROCKUSB_VIRTUAL_FAULTS";

/// What goes wrong with one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Timeout,
    Stall,
    Failed,
    Corrupt,
    Medium,
}

impl FaultKind {
    /// The kinds `random:` picks from: the link's.
    const ALL: [FaultKind; 4] = [
        FaultKind::Timeout,
        FaultKind::Stall,
        FaultKind::Failed,
        FaultKind::Corrupt,
    ];
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "timeout" => Ok(FaultKind::Timeout),
            "stall" => Ok(FaultKind::Stall),
            "failed" => Ok(FaultKind::Failed),
            "corrupt" => Ok(FaultKind::Corrupt),
            "medium" => Ok(FaultKind::Medium),
            other => Err(format!(
                "unknown fault {other:?}: use timeout, stall, failed, corrupt or medium"
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
    commands: u64,
    reads: u64,
    writes: u64,
}

impl Faults {
    /// The faults `ROCKUSB_VIRTUAL_FAULTS` asks for (none when unset; a malformed list is
    /// reported on stderr and ignored rather than silently half-applied).
    pub fn from_env() -> Self {
        match std::env::var(ENV_FAULTS) {
            Ok(spec) => Self::parse(&spec).unwrap_or_else(|e| {
                eprintln!("{ENV_FAULTS}: {e}; no faults injected");
                Faults::default()
            }),
            Err(_) => Faults::default(),
        }
    }

    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut faults = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some(rest) = item.strip_prefix("random:") {
                let (seed, permille) = rest
                    .split_once(':')
                    .ok_or_else(|| format!("{item:?}: use random:SEED:PERMILLE"))?;
                let seed: u64 = seed.parse().map_err(|_| format!("{item:?}: bad seed"))?;
                let permille: u32 = permille
                    .parse()
                    .ok()
                    .filter(|p| *p <= 1000)
                    .ok_or_else(|| format!("{item:?}: the rate is 0 to 1000 per mille"))?;
                faults.random = Some((seed | 1, permille));
                continue;
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
        }
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
            FaultKind::Timeout | FaultKind::Stall => n == commands,
            FaultKind::Failed | FaultKind::Medium => direction == Direction::Write && n == own,
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
        (roll < *permille).then(|| FaultKind::ALL[(*state >> 32) as usize % FaultKind::ALL.len()])
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
        assert!(!run(7).contains(&Some(FaultKind::Medium)));
        assert!((50..150).contains(&hits), "{hits} faults at 10 %");
        assert!(Faults::parse("melt@1").is_err());
        assert!(Faults::parse("timeout@0").is_err());
        assert!(Faults::parse("random:1:2000").is_err());
    }
}
