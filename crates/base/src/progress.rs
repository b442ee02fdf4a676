//! Progress bars for long work, hidden when the terminal is not interactive.

use indicatif::{ProgressBar, ProgressStyle};

/// Hands out progress bars to long-running modules; hidden ones when the terminal is not
/// interactive, so logs stay clean.
#[derive(Clone, Debug, Default)]
pub struct ProgressFactory {
    pub visible: bool,
}

impl ProgressFactory {
    /// A bar counting `len` units (bytes when `bytes` is true) labelled `msg`.
    pub fn bar(&self, len: u64, msg: &str, bytes: bool) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(len);
        let tpl = if bytes { "  {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}" } else { "  {msg} [{bar:30}] {pos}/{len} {eta}" };
        pb.set_style(ProgressStyle::with_template(tpl).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
        pb.set_message(msg.to_string());
        pb
    }
}
