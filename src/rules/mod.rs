//! User-written rules: a TOML file of `[[rule]]`s, each a boolean CEL expression over the
//! transaction, its features, the model scores and named lists, with an action and a reason.
//!
//! CEL (the `cel` crate) was chosen by measurement (`../shared/rules-notes.md`): compiled once,
//! ~0.2 µs a rule read through a variable resolver, `in` on a 10,000-entry list as a map in
//! ~0.2 µs, and errors that name the position. It has no static type checker, so loading checks
//! what it can: every variable a rule references must exist, and every rule must give a boolean
//! on a sample transaction. At run time a rule that errors counts as *errored* (counted, logged
//! once per rule), never as a match or a failed request.
//!
//! **Decision**: the most severe of the model's action and every matching rule's action, except
//! that a matching `allow` rule overrides everything to `allow` (an allow-list entry wins over the
//! models and over other rules).

mod vars;

pub use vars::{RuleInput, variable_names};

use crate::domain::Action;
use anyhow::{Context as _, bail};
use cel::common::value::Val;
use cel::{Context, Env, Program, Value};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Longest rule name.
const MAX_NAME: usize = 64;
/// Longest list name.
pub const MAX_LIST_NAME: usize = 64;

#[derive(Debug, Deserialize)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
    /// Lists the rules may name even while the store has no such list yet.
    #[serde(default)]
    lists: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    when: String,
    action: Action,
    reason: String,
}

/// One compiled rule.
struct Rule {
    name: String,
    action: Action,
    reason: String,
    program: Program,
    errors: AtomicU64,
    logged: AtomicBool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("name", &self.name).field("action", &self.action).finish_non_exhaustive()
    }
}

/// A rule that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub name: String,
    pub action: Action,
    pub reason: String,
}

/// The compiled rules of one file (empty without a file).
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// List names declared in the file.
    declared_lists: Vec<String>,
    /// The model's declared fields the rules were checked against (`train --schema`).
    schema: crate::domain::fields::Schema,
    /// Their names as rule variables.
    fields: std::collections::HashMap<String, vars::DeclaredVar>,
}

/// Named lists as the rules see them: CEL maps (`x in name` is a hash look-up), built once per
/// change of the store's lists.
pub struct Lists {
    version: i64,
    maps: HashMap<String, Box<dyn Val>>,
    /// What a declared list that the store does not have yet reads as.
    empty: Box<dyn Val>,
}

impl std::fmt::Debug for Lists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lists").field("version", &self.version).field("names", &self.maps.keys()).finish()
    }
}

impl Lists {
    /// Lists from the store's values at `version`.
    pub fn new(version: i64, lists: BTreeMap<String, Vec<String>>) -> Self {
        let maps = lists
            .into_iter()
            .map(|(name, values)| (name, map_value(values.into_iter().map(|v| (v, true)).collect())))
            .collect();
        Self { version, maps, empty: map_value(HashMap::new()) }
    }

    pub(crate) fn empty(&self) -> &dyn Val {
        self.empty.as_ref()
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    pub(crate) fn get(&self, name: &str) -> Option<&dyn Val> {
        self.maps.get(name).map(|b| b.as_ref())
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.maps.keys().map(String::as_str)
    }
}

impl Default for Lists {
    fn default() -> Self {
        Self::new(0, BTreeMap::new())
    }
}

/// A CEL map from string keys (`key in map` tests membership).
fn map_value(map: HashMap<String, bool>) -> Box<dyn Val> {
    // Strings and booleans always convert; the fallback is never taken.
    let value: Result<Box<dyn Val>, _> = Value::from(map).try_into();
    value.unwrap_or_else(|_| Box::new(cel::common::types::CelNull))
}

/// A shared CEL environment: building the standard library's function table costs more than a
/// rule, so every evaluation reuses one.
fn env() -> Arc<Env> {
    static ENV: std::sync::OnceLock<Arc<Env>> = std::sync::OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(Env::stdlib())))
}

impl RuleSet {
    /// Reads and compiles `path`. `lists` are the list names the store has now; a rule may also
    /// name a list declared in the file's `lists = [...]`. Every error names the rule and its
    /// position in the file.
    /// `schema`: the declared fields of the model the rules run beside; rules may name them
    /// and their features.
    pub fn load(path: &Path, lists: &Lists, schema: &crate::domain::fields::Schema) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the rules file {}", path.display()))?;
        Self::parse(&text, lists, schema).with_context(|| format!("rules file {}", path.display()))
    }

    /// Compiles rules from TOML text.
    pub fn parse(text: &str, lists: &Lists, schema: &crate::domain::fields::Schema) -> anyhow::Result<Self> {
        let file: RulesFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        let fields = vars::declared_vars(schema);
        let mut known: BTreeSet<&str> = variable_names().collect();
        known.extend(fields.keys().map(String::as_str));
        for name in &file.lists {
            if !is_identifier(name) || known.contains(name.as_str()) {
                bail!("`lists`: `{name}` cannot name a list (letters, digits and _, not a variable name)");
            }
        }
        let mut seen = BTreeSet::new();
        let mut rules = Vec::with_capacity(file.rule.len());
        for (i, spec) in file.rule.into_iter().enumerate() {
            let at = format!("rule {} (`{}`)", i + 1, spec.name);
            if spec.name.trim().is_empty() || spec.name.len() > MAX_NAME {
                bail!("rule {}: `name` must be 1 to {MAX_NAME} characters", i + 1);
            }
            if !seen.insert(spec.name.clone()) {
                bail!("{at}: another rule has the same name");
            }
            if spec.reason.trim().is_empty() {
                bail!("{at}: `reason` is empty");
            }
            let program = env().compile(&spec.when).map_err(|e| anyhow::anyhow!("{at}: `when` does not parse: {e}"))?;
            for var in program.references().variables() {
                let is_list = file.lists.iter().any(|l| l == var) || lists.names().any(|l| l == var);
                if !known.contains(var) && !is_list {
                    bail!(
                        "{at}: unknown name `{var}` (a transaction field, feature or score, or a list declared with `lists = [\"{var}\"]`; `aegis rules --help` lists them)"
                    );
                }
            }
            rules.push(Rule {
                name: spec.name,
                action: spec.action,
                reason: spec.reason,
                program,
                errors: AtomicU64::new(0),
                logged: AtomicBool::new(false),
            });
        }
        let set = Self { rules, declared_lists: file.lists, schema: schema.clone(), fields };
        set.dry_run(lists)?;
        Ok(set)
    }

    /// Every rule must give a boolean on a sample transaction (a type error shows here, not
    /// on the first live transaction that reaches it).
    fn dry_run(&self, lists: &Lists) -> anyhow::Result<()> {
        let sample = vars::Sample::new(&self.schema);
        let input = sample.input();
        let resolver = vars::Resolver { input: &input, lists, declared: &self.declared_lists, fields: &self.fields };
        let context = context(&resolver);
        for (i, rule) in self.rules.iter().enumerate() {
            match rule.program.execute(&context) {
                Ok(Value::Bool(_)) => {}
                Ok(other) => bail!("rule {} (`{}`): `when` gives {other:?}, not true or false", i + 1, rule.name),
                Err(e) => bail!("rule {} (`{}`): `when` fails on a sample transaction: {e}", i + 1, rule.name),
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The rule names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// The rules' actions, in file order.
    pub fn actions(&self) -> impl Iterator<Item = Action> + '_ {
        self.rules.iter().map(|r| r.action)
    }

    /// Appends every matching rule to `out`, in file order. A rule that errors is counted
    /// (see [`RuleSet::errors`]) and logged the first time.
    pub fn evaluate(&self, input: &RuleInput<'_>, lists: &Lists, out: &mut Vec<Match>) {
        let resolver = vars::Resolver { input, lists, declared: &self.declared_lists, fields: &self.fields };
        let context = context(&resolver);
        for rule in &self.rules {
            match rule.program.execute(&context) {
                Ok(Value::Bool(true)) => {
                    out.push(Match { name: rule.name.clone(), action: rule.action, reason: rule.reason.clone() })
                }
                Ok(Value::Bool(false)) => {}
                other => {
                    rule.errors.fetch_add(1, Ordering::Relaxed);
                    if !rule.logged.swap(true, Ordering::Relaxed) {
                        let error = match other {
                            Err(e) => e.to_string(),
                            Ok(v) => format!("gave {v:?}, not true or false"),
                        };
                        tracing::warn!(rule = %rule.name, error = %error, txn_id = %input.txn.txn_id,
                            "a rule failed at run time (counted as errored, not as a match; logged once per rule)");
                    }
                }
            }
        }
    }

    /// Run-time errors per rule, in file order.
    pub fn errors(&self) -> impl Iterator<Item = (&str, u64)> {
        self.rules.iter().map(|r| (r.name.as_str(), r.errors.load(Ordering::Relaxed)))
    }
}

/// A context whose every variable comes from `resolver` (built once per transaction).
fn context<'p, 'r>(resolver: &'r dyn cel::context::VariableResolver) -> Context<'p, 'r> {
    let mut context = Context::with_env(env());
    context.set_variable_resolver(resolver);
    context
}

/// The action after rules: a matching `allow` rule wins; otherwise the most severe of the
/// model's action and every matching rule's.
pub fn decide(model: Action, matches: &[Match]) -> Action {
    if matches.iter().any(|m| m.action == Action::Allow) {
        return Action::Allow;
    }
    matches.iter().map(|m| m.action).fold(model, severest)
}

fn severest(a: Action, b: Action) -> Action {
    let rank = |x: Action| match x {
        Action::Allow => 0,
        Action::Review => 1,
        Action::Block => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Letters, digits and `_`, not starting with a digit: what CEL can name.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= MAX_LIST_NAME
}

#[cfg(test)]
mod tests;
