//! Reading back the text columns the store writes (actions, verdicts, JSON lists of reasons and
//! rules). A value that does not parse is a conversion error naming its column, never a panic.

use rusqlite::Row;
use rusqlite::types::Type;

fn bad(i: usize, e: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, e.into())
}

/// Column `i` parsed with `FromStr` (an [`Action`](crate::domain::Action), a
/// [`Verdict`](crate::domain::Verdict)).
pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    r.get::<_, String>(i)?.parse().map_err(|e| bad(i, e))
}

/// A nullable column `i`, parsed.
pub(crate) fn parsed_opt<T: std::str::FromStr<Err = String>>(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    r.get::<_, Option<String>>(i)?.map(|s| s.parse().map_err(|e| bad(i, e))).transpose()
}

/// The shadow model's opinion from columns `shadow_score, shadow_action, shadow_version`
/// starting at `i` (none when the score is null).
pub(crate) fn shadow(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<crate::domain::ShadowScore>> {
    let Some(score) = r.get::<_, Option<f32>>(i)? else { return Ok(None) };
    let model_version = r.get::<_, Option<String>>(i + 2)?.unwrap_or_default();
    Ok(Some(crate::domain::ShadowScore { score, action: parsed(r, i + 1)?, model_version }))
}

/// Column `i` holding a JSON list of strings.
pub(crate) fn json_list(r: &Row<'_>, i: usize) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(&r.get::<_, String>(i)?).map_err(|e| bad(i, e.to_string()))
}
