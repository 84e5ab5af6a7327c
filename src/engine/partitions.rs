//! Kafka partitions' card states: checkpointed to the store and restored by the next owner.

use super::{Engine, lock};
use crate::domain::CardToken;

impl Engine {
    /// Checkpoints partitions: for each (partition, offset to resume from, its cards), the
    /// cards' states as they are now, all saved in one store transaction. The states may hold
    /// messages past the offset (scored, not yet stored): their redelivery will not move the
    /// restored states again (see [`Arrival::offset`]).
    pub fn checkpoint(
        &self,
        group: &str,
        topic: &str,
        partitions: &[(i32, i64, Vec<CardToken>)],
    ) -> anyhow::Result<()> {
        let checkpoints: Vec<crate::store::Checkpoint> = partitions
            .iter()
            .map(|(partition, next_offset, cards)| crate::store::Checkpoint {
                partition: *partition,
                next_offset: *next_offset,
                cards: cards.len() as u64,
                state: self.export_cards(cards),
            })
            .collect();
        self.results.save_checkpoints(group, topic, &checkpoints)
    }

    /// Loads a partition's checkpoint into the card states, if it has one; returns the offset to
    /// resume from and its cards.
    pub fn restore(&self, group: &str, topic: &str, partition: i32) -> anyhow::Result<Option<(i64, Vec<CardToken>)>> {
        let Some(cp) = self.results.load_checkpoint(group, topic, partition)? else { return Ok(None) };
        let cards = self.import_cards(&cp.state)?;
        Ok(Some((cp.next_offset, cards)))
    }

    /// The states of `cards` (those it has), as a checkpoint.
    fn export_cards<'a>(&self, cards: impl IntoIterator<Item = &'a CardToken>) -> Vec<u8> {
        self.scorer().export_cards(cards)
    }

    /// Takes a checkpoint's card states (the shadow's card states follow the champion's: both
    /// see the same transactions). Returns its cards.
    fn import_cards(&self, checkpoint: &[u8]) -> anyhow::Result<Vec<CardToken>> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut scorer = self.scorer();
        let cards = scorer.import_cards(checkpoint, now_ms)?;
        if let Some(shadow) = lock(&self.shadow).as_mut() {
            shadow.import_cards(checkpoint, now_ms)?;
        }
        Ok(cards)
    }
}
