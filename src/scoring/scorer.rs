//! The live scoring path: one transaction at a time, with per-card streaming state.
//!
//! It runs exactly the code training replays ([`FeaturePipeline::observe`]) and the same model
//! arithmetic as batch scoring ([`Models::score_row`]), so a transaction scores the same live as
//! in a backtest. Scratch buffers are owned and reused: scoring does not allocate except for
//! the reasons' text.

use super::{Action, Bundle, SchemaKind, Score, Scratch, Thresholds, reasons};
use crate::domain::{Transaction, Verdict};
use crate::features::{Encoders, Event, FeatureConfig, FeaturePipeline, interleave};
use anyhow::{Context, bail};
use std::sync::Arc;

/// The outcome for one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub score: Score,
    pub action: Action,
    /// Short sentences, most important first.
    pub reasons: Vec<String>,
    /// The features the models saw (rules read them): the built-in ones, then the declared
    /// fields' (the bundle's `schema.names`).
    pub features: Vec<f32>,
}

#[derive(Debug)]
pub struct Scorer {
    /// Shared with scoring that runs outside the card-state lock ([`decide`], [`decide_batch`]).
    bundle: Arc<Bundle>,
    pipeline: FeaturePipeline,
    features: Vec<f32>,
    scratch: Scratch,
    /// The supervised model's per-input contributions (features, then forest and autoencoder).
    contributions: Vec<f32>,
    /// Where each of the bundle's declared fields sits in the transactions it is given, when
    /// they carry another schema's fields (a shadow beside a champion declaring others); `None`
    /// when the bundle's fields come first, in order.
    remap: Option<Box<[usize]>>,
}

impl Scorer {
    /// A scorer with empty card state. Only transaction bundles can score transactions.
    pub fn new(bundle: Bundle) -> anyhow::Result<Self> {
        let (encoders, config) = check(&bundle)?;
        let pipeline = FeaturePipeline::new(encoders, config);
        Ok(Self {
            features: vec![0.0; pipeline.width()],
            contributions: vec![0.0; pipeline.width() + 2],
            pipeline,
            scratch: bundle.models.scratch(),
            bundle: Arc::new(bundle),
            remap: None,
        })
    }

    /// The transactions this scorer is given carry `request`'s declared fields (which must
    /// include the bundle's): it reads its own from their positions there.
    pub fn read_fields_of(&mut self, request: &crate::domain::fields::Schema) -> anyhow::Result<()> {
        let own = self.fields();
        let positions: Vec<usize> = own
            .fields()
            .iter()
            .map(|f| request.position(&f.name).with_context(|| format!("the requests lack the field `{}`", f.name)))
            .collect::<anyhow::Result<_>>()?;
        let in_order = positions.iter().enumerate().all(|(i, &p)| i == p);
        self.remap = (!in_order).then(|| positions.into());
        Ok(())
    }

    /// `txn` with its declared fields in this bundle's order.
    fn view<'a>(&self, txn: &'a Transaction) -> std::borrow::Cow<'a, Transaction> {
        match &self.remap {
            None => std::borrow::Cow::Borrowed(txn),
            Some(positions) => {
                let missing = crate::domain::fields::FieldValue::Missing;
                let fields = positions.iter().map(|&p| txn.fields.get(p).unwrap_or(&missing).clone()).collect();
                std::borrow::Cow::Owned(Transaction { fields, ..txn.clone() })
            }
        }
    }

    /// Scores with `bundle` from now on, keeping every card's history (hot reload). On error
    /// the current bundle stays.
    pub fn replace_bundle(&mut self, bundle: Bundle) -> anyhow::Result<()> {
        let (encoders, config) = check(&bundle)?;
        self.scratch = bundle.models.scratch();
        self.pipeline.set_encoders(encoders, config);
        self.features = vec![0.0; self.pipeline.width()];
        self.contributions = vec![0.0; self.pipeline.width() + 2];
        self.bundle = Arc::new(bundle);
        self.remap = None;
        Ok(())
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.bundle.manifest.thresholds
    }

    /// The declared fields the bundle reads.
    pub fn fields(&self) -> &crate::domain::fields::Schema {
        &self.bundle.manifest.schema.fields
    }

    /// The version of the model bundle in use.
    pub fn model_version(&self) -> &str {
        &self.bundle.manifest.version
    }

    /// How many cards have a history.
    pub fn n_cards(&self) -> usize {
        self.pipeline.n_cards()
    }

    /// Records a past transaction in its card's state without scoring it (warm-up).
    pub fn observe(&mut self, txn: &Transaction) {
        let txn = self.view(txn);
        self.pipeline.observe(&txn, &mut self.features);
    }

    /// Builds history from past rows, oldest first, each fraud label applied when it became
    /// known (the bundle's label delay unless the row has a `label_time`), as replay does.
    pub fn warm_up(&mut self, rows: &[crate::ingest::LabelledTransaction]) {
        let delay = self.bundle.manifest.schema.feature_config().label_delay_secs;
        interleave(rows, delay, |event| match event {
            Event::Label { txn, known_at } => self.observe_label(txn, known_at, true),
            Event::Row { row, .. } => self.observe(&row.txn),
        });
    }

    /// A label for an earlier transaction became known at `known_at`: the label-aware features
    /// (merchant risk, compromised card) see it from now on.
    pub fn observe_label(&mut self, txn: &Transaction, known_at: i64, fraud: bool) {
        let txn = self.view(txn);
        self.pipeline.observe_label(&txn, known_at, fraud);
    }

    /// A transaction's verdict changed from `previous` to `verdict` at `known_at`: a new fraud
    /// verdict counts as a fraud label; fraud turned legitimate retracts it from merchant,
    /// country and category risk (a card once reported stays suspect for its 30 days).
    pub fn apply_verdict(&mut self, txn: &Transaction, known_at: i64, verdict: Verdict, previous: Option<Verdict>) {
        let txn = self.view(txn);
        match (previous, verdict) {
            (Some(Verdict::Fraud), Verdict::Legit) => self.pipeline.retract_label(&txn),
            (None | Some(Verdict::Legit), Verdict::Fraud) => self.pipeline.observe_label(&txn, known_at, true),
            _ => {}
        }
    }

    /// Records a Kafka message whose decision is already stored (a redelivery) in its card's
    /// state, unless the card holds it already; true if it moved the state.
    pub fn replay_at(&mut self, txn: &Transaction, offset: i64, stored_at: i64) -> bool {
        let txn = self.view(txn);
        self.pipeline.replay_at(&txn, offset, stored_at, &mut self.features)
    }

    /// Raises a shared entity's daily transaction count (see `Engine::refresh_shared_counts`).
    pub fn raise_txns(&mut self, entity: crate::features::Entity, key: &str, day: u32, txns: u32) {
        self.pipeline.raise_txns(entity, key, day, txns);
    }

    /// The card states of `cards`, as a checkpoint.
    pub fn export_cards<'a>(&self, cards: impl IntoIterator<Item = &'a crate::domain::CardToken>) -> Vec<u8> {
        let mut out = Vec::new();
        self.pipeline.export_cards(cards, &mut out);
        out
    }

    /// Takes the card states of a checkpoint, restored at `now_ms`; returns its cards.
    pub fn import_cards(&mut self, checkpoint: &[u8], now_ms: i64) -> anyhow::Result<Vec<crate::domain::CardToken>> {
        self.pipeline.import_cards(checkpoint, now_ms)
    }

    /// The bundle in use, for [`decide`] and [`decide_batch`] outside this scorer's lock.
    pub fn bundle(&self) -> &Arc<Bundle> {
        &self.bundle
    }

    /// Computes the transaction's features and records it in its card's and merchant's state:
    /// the part of scoring that reads and moves state. `offset`: the Kafka message's offset in
    /// its card's partition, if it came from Kafka (see [`FeaturePipeline::observe_at`]).
    pub fn features(&mut self, txn: &Transaction, offset: Option<i64>) -> Vec<f32> {
        let txn = self.view(txn);
        match offset {
            Some(offset) => self.pipeline.observe_at(&txn, offset, &mut self.features),
            None => self.pipeline.observe(&txn, &mut self.features),
        }
        self.features.clone()
    }

    /// [`Scorer::features`], then [`decide`].
    pub fn score(&mut self, txn: &Transaction, offset: Option<i64>) -> anyhow::Result<Decision> {
        let features = self.features(txn, offset);
        decide(&self.bundle, txn, &features, &mut self.scratch, &mut self.contributions)
    }
}

/// The models, the thresholds and the reasons for features already computed: no state, so it
/// runs outside any lock. `scratch` must come from `bundle.models.scratch()`.
pub fn decide(
    bundle: &Bundle,
    txn: &Transaction,
    features: &[f32],
    scratch: &mut Scratch,
    contributions: &mut Vec<f32>,
) -> anyhow::Result<Decision> {
    let score = bundle.models.score_row(features, scratch)?;
    Ok(judge(bundle, txn, features, score, scratch, contributions))
}

/// Runs `f` with this thread's scratch space for `bundle` (and a buffer for the supervised
/// model's contributions), made once per thread and bundle: scoring outside a [`Scorer`]
/// (`/predict` on any runtime thread) does not allocate it per request. A thread keeps the last
/// bundle it scored with alive until it scores with another. `f` must not call this again.
pub fn with_scratch<R>(bundle: &Arc<Bundle>, f: impl FnOnce(&mut Scratch, &mut Vec<f32>) -> R) -> R {
    type Slot = Option<(Arc<Bundle>, Scratch, Vec<f32>)>;
    thread_local! {
        static SCRATCH: std::cell::RefCell<Slot> = const { std::cell::RefCell::new(None) };
    }
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !matches!(&*slot, Some((b, ..)) if Arc::ptr_eq(b, bundle)) {
            *slot = None;
        }
        let (_, scratch, contributions) =
            slot.get_or_insert_with(|| (Arc::clone(bundle), bundle.models.scratch(), Vec::new()));
        f(scratch, contributions)
    })
}

/// [`decide`] for many transactions: the models score them as one matrix (the forest's
/// lock-step batch path, several times cheaper per row), with the same numbers as one at a
/// time; only flagged ones are scored again alone, for their reasons. If the batch cannot be
/// scored (a row with non-finite features), each row is scored alone so that only that row fails.
pub fn decide_batch(bundle: &Bundle, rows: &[(&Transaction, Vec<f32>)]) -> Vec<anyhow::Result<Decision>> {
    let mut scratch = bundle.models.scratch();
    let mut contributions = Vec::new();
    let width = bundle.manifest.schema.names.len();
    let matrix = aegis_model::Matrix::from_vec(rows.iter().flat_map(|(_, f)| f.iter().copied()).collect(), width);
    let scores = matrix.ok().and_then(|m| bundle.models.score_matrix(&m).ok());
    let Some(scores) = scores.filter(|s| s.len() == rows.len()) else {
        return rows.iter().map(|(txn, f)| decide(bundle, txn, f, &mut scratch, &mut contributions)).collect();
    };
    rows.iter()
        .zip(scores)
        .map(|((txn, features), score)| {
            let action = bundle.manifest.thresholds.action(score.combined);
            if action == Action::Allow {
                return Ok(Decision { score, action, reasons: Vec::new(), features: features.clone() });
            }
            decide(bundle, txn, features, &mut scratch, &mut contributions)
        })
        .collect()
}

/// The action for a score and, when flagged, the reasons (read from `scratch`, which must hold
/// this row's scoring).
fn judge(
    bundle: &Bundle,
    txn: &Transaction,
    features: &[f32],
    score: Score,
    scratch: &Scratch,
    contributions: &mut Vec<f32>,
) -> Decision {
    let models = &bundle.models;
    let action = bundle.manifest.thresholds.action(score.combined);
    let reasons = if action == Action::Allow {
        Vec::new()
    } else {
        let schema = &bundle.manifest.schema;
        contributions.resize(features.len() + 2, 0.0);
        let mut r = Vec::new();
        if models.contributions(scratch, contributions).is_some() {
            r = reasons::explain_supervised(txn, schema, features, contributions, 3);
        }
        if r.is_empty() {
            r = reasons::explain(txn, schema, features, &scratch.errors, 3);
        }
        r
    };
    Decision { score, action, reasons, features: features.to_vec() }
}

/// The bundle's encoders and feature settings, if it can score transactions.
fn check(bundle: &Bundle) -> anyhow::Result<(Encoders, FeatureConfig)> {
    if bundle.manifest.schema.kind != SchemaKind::Transaction {
        bail!("bundle {} was trained on numeric columns and cannot score transactions", bundle.manifest.version);
    }
    let encoders = bundle.encoders.clone().context("the bundle has no encoders")?;
    Ok((encoders, bundle.manifest.schema.feature_config()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{DEFAULT_LABEL_DELAY_SECS, replay};
    use crate::scoring::testing::trained;

    #[test]
    fn live_scores_equal_batch_replay_scores() {
        let (bundle, rows) = trained();
        let split = 3000;
        let batch_features = replay(
            &rows,
            split..rows.len(),
            bundle.encoders.as_ref().unwrap(),
            FeatureConfig::default(),
            DEFAULT_LABEL_DELAY_SECS,
            |_| {},
        );
        let batch = bundle.models.score_matrix(&batch_features.features).unwrap();
        let mut scorer = Scorer::new(bundle).unwrap();
        // Live: the same transactions, each label arriving at its time.
        let (mut flagged, mut supervised_reasons) = (0, 0);
        interleave(&rows, DEFAULT_LABEL_DELAY_SECS, |event| match event {
            Event::Label { txn, known_at } => scorer.observe_label(txn, known_at, true),
            Event::Row { index, row } if index < split => scorer.observe(&row.txn),
            Event::Row { index, row } => {
                let want = &batch[index - split];
                let got = scorer.score(&row.txn, None).unwrap();
                assert_eq!(got.score, *want, "txn {}", row.txn.txn_id);
                assert!(want.fraud_probability.is_some());
                assert_eq!(got.action, scorer.thresholds().action(want.combined));
                assert_eq!(got.reasons.is_empty(), got.action == Action::Allow, "{:?}", got.reasons);
                flagged += usize::from(got.action != Action::Allow);
                supervised_reasons +=
                    usize::from(got.reasons.iter().any(|r| r.contains("merchant") || r.contains("amount")));
            }
        });
        assert!(flagged > 0, "some transactions should be flagged");
        assert!(supervised_reasons > 0, "reasons should come from the supervised model");
    }

    #[test]
    fn a_scorer_reads_its_fields_from_a_wider_request_schema() {
        let schema = crate::domain::fields::Schema::parse(
            "[[field]]\nname = \"device_id\"\nkind = \"entity\"\n[[field]]\nname = \"score_x\"\nkind = \"number\"",
        )
        .unwrap();
        let (bundle, rows) = crate::scoring::testing::trained_with(schema.clone());
        // Requests carry another model's field first, then these two in the other order.
        let wider = crate::domain::fields::Schema::parse(
            "[[field]]\nname = \"channel\"\nkind = \"category\"\n[[field]]\nname = \"score_x\"\nkind = \"number\"\n[[field]]\nname = \"device_id\"\nkind = \"entity\"",
        )
        .unwrap();
        let (mut direct, mut remapped) = (Scorer::new(bundle.clone()).unwrap(), Scorer::new(bundle).unwrap());
        remapped.read_fields_of(&wider).unwrap();
        use crate::domain::fields::FieldValue::{Missing, Number, Text};
        for (i, row) in rows.iter().take(300).enumerate() {
            let device = if i % 3 == 0 { Missing } else { Text(format!("d-{}", i % 7).into()) };
            let own = Transaction { fields: vec![device.clone(), Number(i as f64)].into(), ..row.txn.clone() };
            let wide =
                Transaction { fields: vec![Text("ecom".into()), Number(i as f64), device].into(), ..row.txn.clone() };
            let (a, b) = (direct.features(&own, None), remapped.features(&wide, None));
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "row {i}");
        }
        assert!(
            remapped.read_fields_of(&crate::domain::fields::Schema::default()).is_err(),
            "its fields must be there"
        );
    }

    #[test]
    fn thread_scratch_is_kept_per_bundle_and_scores_as_a_fresh_one() {
        let (bundle, rows) = trained();
        let (a, b) = (Arc::new(bundle.clone()), Arc::new(bundle));
        let mut scorer = Scorer::new((*a).clone()).unwrap();
        let txn = &rows[10].txn;
        let features = scorer.features(txn, None);
        let fresh = {
            let (mut scratch, mut contributions) = (a.models.scratch(), Vec::new());
            decide(&a, txn, &features, &mut scratch, &mut contributions).unwrap()
        };
        let with = |bundle: &Arc<Bundle>| with_scratch(bundle, |s, c| decide(bundle, txn, &features, s, c).unwrap());
        assert_eq!(with(&a), fresh);
        assert_eq!(Arc::strong_count(&a), 2, "this thread keeps the scratch of the bundle it scored with");
        assert_eq!(with(&a), fresh, "and reuses it");
        assert_eq!(with(&b), fresh);
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (1, 2), "another bundle replaces it");
    }

    #[test]
    fn bundle_round_trips_through_disk() {
        let (bundle, _) = trained();
        let dir = tempfile::tempdir().unwrap();
        let path = bundle.save(dir.path(), &[("report.json", b"{}")]).unwrap();
        assert!(path.join("report.json").is_file());
        let back = Bundle::load(dir.path()).unwrap();
        assert_eq!(back.models, bundle.models);
        assert_eq!(back.manifest, bundle.manifest);
        assert_eq!(back.encoders, bundle.encoders);
        // Saving the same version again is refused rather than overwriting it.
        assert!(bundle.save(dir.path(), &[]).is_err());
    }
}
