//! Bucketed sliding windows: a fixed ring of (count, amount sum) buckets per time granularity.
//!
//! Exact at bucket granularity: a window of `N` buckets of width `w` at time `t` covers the
//! bucket holding `t` and the `N − 1` before it, i.e. between `(N − 1)·w` and `N·w` seconds of
//! history. Updates are O(1) amortised (advancing clears at most `N` stale slots); queries sum
//! at most `N` slots. An event older than the ring's span is not counted (it can only happen with
//! out-of-order input, as training replays in time order).

/// `N` buckets of `WIDTH` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring<const N: usize, const WIDTH: i64> {
    /// Bucket id (Unix seconds / WIDTH) of the newest slot; `None` until the first event.
    pub(super) head: Option<u32>,
    pub(super) count: [u16; N],
    pub(super) sum: [f32; N],
}

impl<const N: usize, const WIDTH: i64> Default for Ring<N, WIDTH> {
    fn default() -> Self {
        Self { head: None, count: [0; N], sum: [0.0; N] }
    }
}

impl<const N: usize, const WIDTH: i64> Ring<N, WIDTH> {
    pub fn bucket(ts: i64) -> u32 {
        // Unix seconds before 1970 or past 2106 are clamped; real transactions are neither.
        ts.div_euclid(WIDTH).clamp(0, i64::from(u32::MAX)) as u32
    }

    /// Records an event of `amount` at `ts`.
    pub fn add(&mut self, ts: i64, amount: f32) {
        let b = Self::bucket(ts);
        let head = match self.head {
            Some(h) if b <= h => h,
            Some(h) => {
                // Clear the slots between the old head and the new one (at most N).
                let steps = (b - h).min(N as u32);
                for k in 1..=steps {
                    let slot = (h + k) as usize % N;
                    self.count[slot] = 0;
                    self.sum[slot] = 0.0;
                }
                self.head = Some(b);
                b
            }
            None => {
                self.head = Some(b);
                b
            }
        };
        if head - b < N as u32 {
            let slot = b as usize % N;
            self.count[slot] = self.count[slot].saturating_add(1);
            self.sum[slot] += amount;
        }
    }

    /// (count, amount sum) over the `span` buckets ending with the one holding `ts`
    /// (`span ≤ N`). Buckets newer than `ts` are not counted: reads are point-in-time.
    pub fn window(&self, ts: i64, span: usize) -> (u32, f32) {
        let Some(head) = self.head else {
            return (0, 0.0);
        };
        let now = Self::bucket(ts);
        let span = span.min(N) as u32;
        let oldest_kept = head.saturating_sub(N as u32 - 1);
        let from = now.saturating_sub(span - 1).max(oldest_kept);
        let to = now.min(head);
        let (mut c, mut s) = (0u32, 0f32);
        if from <= to {
            for b in from..=to {
                let slot = b as usize % N;
                c += u32::from(self.count[slot]);
                s += self.sum[slot];
            }
        }
        (c, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Hours = Ring<24, 3600>;

    #[test]
    fn counts_within_span_and_forgets_older() {
        let mut r = Hours::default();
        r.add(0, 10.0);
        r.add(3599, 5.0);
        r.add(3600, 1.0);
        assert_eq!(r.window(3600, 1), (1, 1.0));
        assert_eq!(r.window(3600, 2), (3, 16.0));
        // 24 hours later the first bucket has slid out of a 24-bucket window.
        r.add(24 * 3600, 2.0);
        assert_eq!(r.window(24 * 3600, 24), (2, 3.0));
    }

    #[test]
    fn long_gap_clears_everything() {
        let mut r = Hours::default();
        r.add(0, 10.0);
        r.add(1000 * 3600, 1.0);
        assert_eq!(r.window(1000 * 3600, 24), (1, 1.0));
    }

    #[test]
    fn reads_ignore_newer_buckets() {
        let mut r = Hours::default();
        r.add(0, 1.0);
        r.add(5 * 3600, 2.0);
        assert_eq!(r.window(3600, 24), (1, 1.0));
    }
}
