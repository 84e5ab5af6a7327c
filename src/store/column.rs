//! Reading back the text columns the store writes (actions, verdicts, JSON lists of reasons and
//! rules). A value that does not parse is an error naming its column, never a panic.

use super::sql::Row;
use anyhow::Context;

/// Column `i` parsed with `FromStr` (an [`Action`](crate::domain::Action), a
/// [`Verdict`](crate::domain::Verdict)).
pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(r: &dyn Row, i: usize) -> anyhow::Result<T> {
    r.text(i)?.parse().map_err(|e: String| anyhow::anyhow!("column {i}: {e}"))
}

/// A nullable column `i`, parsed.
pub(crate) fn parsed_opt<T: std::str::FromStr<Err = String>>(r: &dyn Row, i: usize) -> anyhow::Result<Option<T>> {
    r.opt_text(i)?.map(|s| s.parse().map_err(|e: String| anyhow::anyhow!("column {i}: {e}"))).transpose()
}

/// The shadow model's opinion from columns `shadow_score, shadow_action, shadow_version`
/// starting at `i` (none when the score is null).
pub(crate) fn shadow(r: &dyn Row, i: usize) -> anyhow::Result<Option<crate::domain::ShadowScore>> {
    let Some(score) = r.opt_real32(i)? else { return Ok(None) };
    let model_version = r.opt_string(i + 2)?.unwrap_or_default();
    Ok(Some(crate::domain::ShadowScore { score, action: parsed(r, i + 1)?, model_version }))
}

/// Column `i` holding a JSON list of strings.
pub(crate) fn json_list(r: &dyn Row, i: usize) -> anyhow::Result<Vec<String>> {
    serde_json::from_str(r.text(i)?).with_context(|| format!("column {i} is not a JSON list of strings"))
}
