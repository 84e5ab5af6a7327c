//! Whether a shadow model has earned the champion's place: judged on the stored decisions it
//! scored beside the champion, with the verdicts they have now (a decision without one counts as
//! legitimate, as `aegis evaluate --db` counts it).

use crate::store::Compared;
use aegis_model::metrics::average_precision;

/// Fraud verdicts needed among the shadow's decisions before its average precision means
/// anything.
pub const MIN_FRAUDS: usize = 5;

/// The comparison a promotion rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub rows: usize,
    pub frauds: usize,
    pub champion_ap: f64,
    pub shadow_ap: f64,
}

impl Evidence {
    /// The evidence of `rows` (decisions the shadow scored); `Err` says why there is none.
    pub fn of(rows: &[Compared]) -> Result<Self, String> {
        let labels: Vec<bool> = rows.iter().map(|r| r.verdict == Some(true)).collect();
        let frauds = labels.iter().filter(|&&f| f).count();
        if frauds < MIN_FRAUDS {
            return Err(format!(
                "no evidence yet: {} decisions scored by the shadow, {frauds} with a fraud verdict ({MIN_FRAUDS} needed); \
                 send labels (POST /labels, `aegis labels import`) and compare with `aegis evaluate --db`",
                rows.len()
            ));
        }
        let champion: Vec<f32> = rows.iter().map(|r| r.score).collect();
        let shadow: Vec<f32> = rows.iter().map(|r| r.shadow.as_ref().map_or(0.0, |s| s.score)).collect();
        let ap = |scores: &[f32]| average_precision(scores, &labels).unwrap_or(0.0);
        Ok(Self { rows: rows.len(), frauds, champion_ap: ap(&champion), shadow_ap: ap(&shadow) })
    }

    /// `Err` with the numbers when the shadow ranks the confirmed frauds worse than the champion.
    pub fn judge(&self) -> Result<(), String> {
        if self.shadow_ap < self.champion_ap {
            return Err(format!(
                "the shadow is worse than the champion on the {} decisions both scored ({} frauds): average \
                 precision {:.3} against {:.3}",
                self.rows, self.frauds, self.shadow_ap, self.champion_ap
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Action, ShadowScore};

    fn row(score: f32, shadow: f32, fraud: Option<bool>) -> Compared {
        Compared {
            card: String::new(),
            timestamp: 0,
            score,
            action: Action::Allow,
            shadow: Some(ShadowScore { score: shadow, action: Action::Allow, model_version: "s".into() }),
            model_version: "c".into(),
            verdict: fraud,
        }
    }

    #[test]
    fn a_shadow_needs_evidence_and_must_rank_frauds_no_worse() {
        // Four frauds: not enough to judge, whatever the scores.
        let mut rows: Vec<Compared> = (0..4).map(|_| row(0.1, 0.9, Some(true))).collect();
        rows.extend((0..20).map(|i| row(0.5, 0.05 * i as f32 / 20.0, None)));
        assert!(Evidence::of(&rows).unwrap_err().contains("4 with a fraud verdict"));
        // A fifth: the shadow puts the frauds first, the champion last.
        rows.push(row(0.1, 0.9, Some(true)));
        let e = Evidence::of(&rows).unwrap();
        assert!(e.shadow_ap > e.champion_ap && e.judge().is_ok(), "{e:?}");
        // The other way round it is refused, with the numbers.
        let swapped: Vec<Compared> =
            rows.iter().map(|r| row(r.shadow.as_ref().unwrap().score, r.score, r.verdict)).collect();
        let why = Evidence::of(&swapped).unwrap().judge().unwrap_err();
        assert!(why.contains("worse") && why.contains("5 frauds"), "{why}");
    }
}
