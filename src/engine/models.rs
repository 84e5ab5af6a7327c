//! The engine's models: the champion and the shadow, reloaded from their paths or promoted.

use super::{Engine, lock, promotion, write};
use crate::rules::RuleSet;
use crate::scoring::{Bundle, Scorer};
use anyhow::Context;
use std::sync::Arc;

/// The declared fields a request carries when `champion` and `shadow` score it: the champion's,
/// then the shadow's it lacks (a challenger may bring fields the champion does not read). Each
/// scorer is told where its own sit.
pub(super) fn request_fields(
    champion: &mut Scorer,
    shadow: Option<&mut Scorer>,
) -> anyhow::Result<crate::domain::fields::Schema> {
    let mut fields = champion.fields().clone();
    if let Some(shadow) = shadow {
        fields = fields.union(shadow.fields()).context("the shadow bundle's fields do not fit the champion's")?;
        shadow.read_fields_of(&fields)?;
    }
    champion.read_fields_of(&fields)?;
    Ok(fields)
}

impl Engine {
    pub fn model_version(&self) -> String {
        self.scorer().model_version().to_owned()
    }

    /// The share of its training transactions the model flags (its calibrated review rate).
    pub fn flag_rate(&self) -> f64 {
        self.scorer().thresholds().review_rate
    }

    /// The shadow bundle's version, if one scores beside the champion.
    pub fn shadow_version(&self) -> Option<String> {
        lock(&self.shadow).as_ref().map(|s| s.model_version().to_owned())
    }

    /// Loads the bundles (champion and shadow) and the rules file at the configured paths again
    /// and swaps them in, keeping card history. Nothing changes unless everything loads: a
    /// broken rules file or bundle is refused and the old ones keep serving.
    pub fn reload(&self) -> anyhow::Result<String> {
        let sources = lock(&self.sources).clone();
        let lists = Arc::clone(&self.policy().lists);
        let bundle = Bundle::load(&sources.models)?;
        let schema = &bundle.manifest.schema.fields;
        let rules = sources.rules.as_deref().map(|p| RuleSet::load(p, &lists, schema)).transpose()?;
        let shadow = sources.shadow.as_deref().map(Bundle::load).transpose().context("shadow bundle")?;
        let mut scorer = self.scorer();
        let mut shadow_scorer = lock(&self.shadow);
        // Checked before anything is swapped: the two bundles' fields must fit together.
        let shadow_fields =
            shadow.as_ref().map(|b| &b.manifest.schema.fields).or(shadow_scorer.as_ref().map(|s| s.fields()));
        if let Some(other) = shadow_fields {
            bundle
                .manifest
                .schema
                .fields
                .union(other)
                .context("the shadow bundle's fields do not fit the champion's")?;
        }
        if let (Some(bundle), Some(s)) = (shadow, shadow_scorer.as_mut()) {
            s.replace_bundle(bundle).context("shadow bundle")?;
        }
        scorer.replace_bundle(bundle)?;
        let version = scorer.model_version().to_owned();
        let fields = request_fields(&mut scorer, shadow_scorer.as_mut())?;
        drop((scorer, shadow_scorer));
        self.results.set_fields(fields.clone());
        let mut policy = write(&self.policy);
        policy.fields = fields;
        if let Some(rules) = rules {
            tracing::info!(rules = rules.len(), "rules reloaded");
            policy.rules = Arc::new(rules);
        }
        drop(policy);
        self.metrics.set_model_version(&version);
        tracing::info!(version = %version, "model bundle reloaded");
        Ok(version)
    }

    /// Makes the shadow bundle the champion: it answers from now on (with the card history it
    /// built beside the champion), the champion's models directory's `current` points at it,
    /// and reloads and restarts load it. Refused unless the stored decisions it scored show it
    /// ranks the confirmed frauds at least as well as the champion ([`promotion::Evidence`]);
    /// `force` promotes anyway (logged).
    /// Returns the new champion's version.
    pub fn promote(&self, force: bool) -> anyhow::Result<String> {
        let mut sources = lock(&self.sources);
        let path = sources.shadow.clone().context("no shadow model to promote (start with --shadow DIR)")?;
        let shadow_version =
            lock(&self.shadow).as_ref().map(|s| s.model_version().to_owned()).context("no shadow model to promote")?;
        let verdict = self
            .results
            .readers()
            .with(|c| crate::store::scored_by_shadow(c, &shadow_version))
            .map(|rows| promotion::Evidence::of(&rows).and_then(|e| e.judge().map(|()| e)));
        match (verdict?, force) {
            (Ok(e), _) => tracing::info!(
                shadow = %shadow_version, rows = e.rows, frauds = e.frauds, shadow_ap = e.shadow_ap,
                champion_ap = e.champion_ap, "the shadow ranks confirmed frauds at least as well"
            ),
            (Err(why), true) => tracing::warn!(shadow = %shadow_version, reason = %why, "promotion forced"),
            (Err(why), false) => anyhow::bail!("{why}; promote anyway with ?force=true"),
        }
        // The rules read the champion's declared fields by name: they must load against the
        // promoted model's.
        let shadow_fields = lock(&self.shadow).as_ref().map(|s| s.fields().clone()).unwrap_or_default();
        let lists = Arc::clone(&self.policy().lists);
        let rules = sources
            .rules
            .as_deref()
            .map(|p| RuleSet::load(p, &lists, &shadow_fields))
            .transpose()
            .context("the rules do not load against the shadow's declared fields")?;
        // The champion's models directory now points at the promoted bundle; a champion given as
        // a bundle directory is replaced by the shadow's path.
        let models = if crate::scoring::is_models_root(&sources.models) {
            let root = if sources.models.file_name().is_some_and(|n| n == "current") {
                sources.models.parent().map(std::path::Path::to_path_buf).unwrap_or_default()
            } else {
                sources.models.clone()
            };
            crate::scoring::make_current(&root, &path)?;
            sources.models.clone()
        } else {
            path
        };
        let mut scorer = self.scorer();
        let shadow = lock(&self.shadow).take().context("no shadow model to promote")?;
        *scorer = shadow;
        let version = scorer.model_version().to_owned();
        let fields = request_fields(&mut scorer, None)?;
        drop(scorer);
        self.results.set_fields(fields.clone());
        let mut policy = write(&self.policy);
        policy.fields = fields;
        if let Some(rules) = rules {
            policy.rules = Arc::new(rules);
        }
        drop(policy);
        (sources.models, sources.shadow) = (models, None);
        self.metrics.set_model_version(&version);
        tracing::info!(version = %version, "shadow model promoted to champion");
        Ok(version)
    }
}
