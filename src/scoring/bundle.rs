//! The model bundle: `models/<version>/` with a manifest and the fitted parts, and a
//! `models/current` link to the newest. Loading refuses a bundle written in another format or
//! for another feature schema, so a model is never fed features it was not trained on.

use super::{Models, SupervisedSummary, Thresholds};
use crate::features::{Encoders, FEATURE_NAMES, FeatureConfig, SCHEMA_VERSION};
use aegis_model::{AutoencoderParams, IsolationForestParams, TrainingHistory};
use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// Bumped whenever the bundle's files or their meaning change.
/// v2: the supervised model in `models.json`, the label delay in the schema.
pub const FORMAT_VERSION: u32 = 2;

/// Where the features come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaKind {
    /// Transactions through the streaming feature pipeline.
    Transaction,
    /// Columns of a preprocessed numeric CSV, used as they are.
    Numeric,
}

/// The named, ordered features a bundle was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchema {
    pub kind: SchemaKind,
    pub version: u32,
    pub names: Vec<String>,
    /// The label delay the label-aware features read risk behind (transaction schema).
    #[serde(default)]
    pub label_delay_secs: Option<i64>,
    /// The team's declared fields (`train --schema`): the bundle carries them, so what scores
    /// with it reads the same fields. Absent without a schema.
    #[serde(default, skip_serializing_if = "crate::domain::fields::Schema::is_empty")]
    pub fields: crate::domain::fields::Schema,
}

impl FeatureSchema {
    /// The schema of the transaction feature pipeline in this build.
    pub fn transaction(config: FeatureConfig) -> Self {
        Self {
            kind: SchemaKind::Transaction,
            version: SCHEMA_VERSION,
            names: FEATURE_NAMES
                .iter()
                .map(|s| (*s).to_owned())
                .chain(crate::features::declared::feature_names(&config.fields))
                .collect(),
            label_delay_secs: Some(config.label_delay_secs),
            fields: config.fields,
        }
    }

    /// The feature settings a transaction bundle was trained with.
    pub fn feature_config(&self) -> FeatureConfig {
        FeatureConfig {
            label_delay_secs: self.label_delay_secs.unwrap_or(crate::features::DEFAULT_LABEL_DELAY_SECS),
            fields: self.fields.clone(),
        }
    }
}

/// What the models were trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub path: String,
    /// SHA-256 of the input file.
    pub sha256: String,
    pub rows: usize,
    pub training_rows: usize,
    pub holdout_rows: usize,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The label column, if the data had one.
    pub label_column: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub version: String,
    pub created_at: String,
    pub aegis_version: String,
    pub schema: FeatureSchema,
    pub data: DataInfo,
    pub isolation_forest: IsolationForestParams,
    pub autoencoder: AutoencoderParams,
    pub autoencoder_training: TrainingHistory,
    pub thresholds: Thresholds,
    /// What the supervised model learned from; `None` without one.
    #[serde(default)]
    pub supervised: Option<SupervisedSummary>,
    /// Headline evaluation numbers (the full report is `report.json`), if labels existed.
    pub metrics: Option<serde_json::Value>,
}

/// A loaded (or freshly trained) bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub encoders: Option<Encoders>,
    pub models: Models,
}

const MANIFEST: &str = "manifest.json";
const ENCODERS: &str = "encoders.json";
const MODELS: &str = "models.json";

impl Bundle {
    /// Writes the bundle (and `extra_files`, such as reports) to `root/<version>/` and points
    /// `root/current` at it. Returns the
    /// bundle's directory. Files are written to a temporary directory first and renamed into
    /// place, so a crash never leaves a half-written bundle under its final name.
    pub fn save(&self, root: &Path, extra_files: &[(&str, &[u8])]) -> anyhow::Result<PathBuf> {
        let dir = self.save_beside(root, extra_files)?;
        point_current(root, &self.manifest.version)?;
        Ok(dir)
    }

    /// As [`Bundle::save`], leaving `root/current` where it is (a challenger for `--shadow`).
    pub fn save_beside(&self, root: &Path, extra_files: &[(&str, &[u8])]) -> anyhow::Result<PathBuf> {
        let dir = root.join(&self.manifest.version);
        ensure!(!dir.exists(), "{} already exists", dir.display());
        let tmp = root.join(format!(".{}.partial", self.manifest.version));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        write_json(&tmp.join(MANIFEST), &self.manifest)?;
        write_json(&tmp.join(MODELS), &self.models)?;
        if let Some(enc) = &self.encoders {
            write_json(&tmp.join(ENCODERS), enc)?;
        }
        for (name, bytes) in extra_files {
            let path = tmp.join(name);
            std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        std::fs::rename(&tmp, &dir).with_context(|| format!("cannot move the bundle to {}", dir.display()))?;
        Ok(dir)
    }

    /// Loads a bundle from its directory (or through a `current` link), refusing a bundle of
    /// another format or feature schema, or one whose files are inconsistent.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let dir = resolve_current(dir)?;
        let manifest: Manifest = read_json(&dir.join(MANIFEST))?;
        ensure!(
            manifest.format_version == FORMAT_VERSION,
            "{}: bundle format {} is not supported by this aegis (it reads format {FORMAT_VERSION}); retrain with `aegis train`",
            dir.display(),
            manifest.format_version
        );
        let schema = &manifest.schema;
        let encoders = match schema.kind {
            SchemaKind::Transaction => {
                let want = FeatureSchema::transaction(schema.feature_config());
                if schema.version != want.version || schema.names != want.names {
                    bail!(
                        "{}: the bundle was trained on feature schema v{} ({} features) but this aegis computes v{} ({} features); retrain with `aegis train`",
                        dir.display(),
                        schema.version,
                        schema.names.len(),
                        want.version,
                        want.names.len()
                    );
                }
                Some(read_json::<Encoders>(&dir.join(ENCODERS))?)
            }
            SchemaKind::Numeric => None,
        };
        let models: Models = read_json(&dir.join(MODELS))?;
        models.validate(schema.names.len()).with_context(|| format!("{}: inconsistent model files", dir.display()))?;
        Ok(Self { manifest, encoders, models })
    }
}

/// Points `root/current` at the bundle at `bundle` (a bundle directory, or through a
/// `current` link) so that it is what loads next; returns the bundle's directory. A bundle
/// inside `root` is linked by its name, one elsewhere by its absolute path.
pub fn make_current(root: &Path, bundle: &Path) -> anyhow::Result<PathBuf> {
    let dir = resolve_current(bundle)?;
    // Through the link itself (`models/current`) to the version it names.
    let dir = std::fs::canonicalize(&dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let root_dir = std::fs::canonicalize(root).with_context(|| format!("cannot resolve {}", root.display()))?;
    let target = match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) if parent == root_dir => PathBuf::from(name),
        _ => dir.clone(),
    };
    point_current(root, &target.to_string_lossy())?;
    Ok(dir)
}

/// True if `path` is a models root (it holds `current` and is not a bundle itself).
pub fn is_models_root(path: &Path) -> bool {
    !path.join(MANIFEST).exists() || path.file_name().is_some_and(|n| n == "current")
}

/// If `path` is a models root holding `current` (or is `current` itself), the bundle it names.
fn resolve_current(path: &Path) -> anyhow::Result<PathBuf> {
    let candidate = if path.join(MANIFEST).exists() { path.to_path_buf() } else { path.join("current") };
    // `current` may be a symlink (Unix) or a text file naming the version (elsewhere).
    if candidate.is_file() {
        let version = std::fs::read_to_string(&candidate)?;
        return Ok(candidate.with_file_name(version.trim()));
    }
    if !candidate.join(MANIFEST).exists() {
        bail!("{}: no model bundle here (expected {MANIFEST}); train one with `aegis train`", path.display());
    }
    Ok(candidate)
}

/// Atomically repoints `root/current` at `version`.
fn point_current(root: &Path, version: &str) -> anyhow::Result<()> {
    let link = root.join("current");
    let tmp = root.join(".current.tmp");
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(version, &tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    #[cfg(not(unix))]
    std::fs::write(&tmp, version).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &link).with_context(|| format!("cannot update {}", link.display()))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut w, value).with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::flush(&mut w)?;
    Ok(())
}

fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("{}: not a valid bundle file", path.display()))
}
