//! Card-state checkpoints of Kafka partitions: per (consumer group, topic, partition), the
//! states of the partition's cards and the offset to resume from, replaced whole in one
//! transaction. A worker writes them periodically and when a partition is taken from it; the
//! next owner loads the partition's checkpoint on assignment (`kafka::consumer`).

use super::Store;
use super::sql::args;

/// One partition's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub partition: i32,
    /// Every message before this offset is stored and in `state`; consumption resumes here.
    pub next_offset: i64,
    pub cards: u64,
    /// The cards' states (`features::codec`).
    pub state: Vec<u8>,
}

impl Store {
    /// Replaces the checkpoints of `group`/`topic` for each of `checkpoints`' partitions, in one
    /// transaction.
    pub fn save_checkpoints(
        &mut self,
        group: &str,
        topic: &str,
        checkpoints: &[Checkpoint],
        now_ms: i64,
    ) -> anyhow::Result<()> {
        self.conn.transaction(None, |c| {
            for cp in checkpoints {
                c.execute(
                    "INSERT INTO card_checkpoints (consumer_group, topic, partition, next_offset, cards, state, taken_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = excluded.next_offset,
                         cards = excluded.cards, state = excluded.state, taken_at = excluded.taken_at",
                    args![group, topic, i64::from(cp.partition), cp.next_offset, cp.cards as i64, cp.state.as_slice(), now_ms],
                )?;
            }
            Ok(())
        })
    }

    /// The newest checkpoint of one partition, if any.
    pub fn load_checkpoint(&mut self, group: &str, topic: &str, partition: i32) -> anyhow::Result<Option<Checkpoint>> {
        self.conn.query_opt(
            "SELECT next_offset, cards, state FROM card_checkpoints
             WHERE consumer_group = ?1 AND topic = ?2 AND partition = ?3",
            args![group, topic, i64::from(partition)],
            |r| {
                Ok(Checkpoint {
                    partition,
                    next_offset: r.int(0)?,
                    cards: r.int(1)?.unsigned_abs(),
                    state: r.blob(2)?.to_vec(),
                })
            },
        )
    }
}
