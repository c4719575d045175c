//! How the gateway stand-in splits a stage's requests between the stage and its canary, and
//! what it counts.

/// How the stand-in picks the requests a stage's canary serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CanarySplit {
    /// Evenly: after `n` requests under a share `p`, exactly `floor(n * p / 100)` went to the
    /// canary. The count restarts when the share changes.
    #[default]
    Even,
    /// At random, as API Gateway does, from a PRNG seeded with this (one per stage).
    Seeded(u64),
}

/// A stage's requests as the stand-in served them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageTraffic {
    /// Requests to a known path of the stage (the stage existing).
    pub requests: u64,
    /// Of those, the requests the canary served.
    pub canary: u64,
    /// Requests answered 5XX.
    pub failed: u64,
    /// Canary requests answered 5XX.
    pub canary_failed: u64,
}

/// The split's state for one stage.
#[derive(Debug)]
pub(super) struct Split {
    percent: f64,
    /// Requests since the share was set.
    n: u64,
    rng: fastrand::Rng,
}

/// The `n`th request (from 1) under `share` (0 to 1) is the canary's, picked evenly.
pub fn even_pick(n: u64, share: f64) -> bool {
    let at = |k: u64| (k as f64 * share + 1e-9).floor();
    n > 0 && at(n) > at(n - 1)
}

impl Split {
    pub(super) fn new(mode: CanarySplit, percent: f64) -> Split {
        let seed = match mode {
            CanarySplit::Seeded(seed) => seed,
            CanarySplit::Even => 0,
        };
        Split {
            percent,
            n: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Whether the next request goes to the canary serving `percent` (the count restarts when
    /// the share changes).
    pub(super) fn pick(&mut self, mode: CanarySplit, percent: f64) -> bool {
        if self.percent != percent {
            self.percent = percent;
            self.n = 0;
        }
        self.n += 1;
        match mode {
            CanarySplit::Even => even_pick(self.n, percent / 100.0),
            CanarySplit::Seeded(_) => self.rng.f64() * 100.0 < percent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_even_split_gives_the_canary_exactly_its_share_so_far() {
        let picked = |share: f64, n: u64| (1..=n).filter(|&k| even_pick(k, share)).count() as u64;
        assert_eq!(
            (1..=30).filter(|&k| even_pick(k, 0.1)).collect::<Vec<_>>(),
            [10, 20, 30]
        );
        for (share, n) in [
            (0.1, 1000),
            (0.05, 999),
            (1.0 / 3.0, 300),
            (0.0, 50),
            (1.0, 50),
        ] {
            assert_eq!(picked(share, n), (n as f64 * share + 1e-9).floor() as u64);
        }
    }
}
