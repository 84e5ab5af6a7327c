//! Progress bars on stderr for long work. indicatif hides them when stderr is not a terminal,
//! so scripts and CI logs stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `len` items of `unit`, labelled `message`.
pub fn bar(len: u64, message: &str, unit: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!(
        "{{msg:>12}} [{{bar:32.cyan/blue}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, {{eta}} left)"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::new(len).with_style(style).with_message(message.to_owned())
}

/// A spinner for work of unknown length.
pub fn spinner(message: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner().with_message(message.to_owned());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}
