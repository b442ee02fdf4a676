//! Positions in the text being loaded: byte offsets, char indexes and marks, for the marks
//! yaml-rust2 places differently from PyYAML.

use std::cell::OnceCell;

use super::Mark;

/// The text being loaded, for the few marks yaml-rust2 does not place where PyYAML does.
///
/// Converting between byte offsets, char indexes and marks goes through tables built on first
/// use in one pass over the text, so each conversion costs O(log n) whatever its place in the
/// text: counting from the start of the text for every fix-up made loading quadratic (a Helm
/// index puts an unindented list in every entry).
pub(super) struct Source<'t> {
    text: &'t str,
    ascii: bool,
    /// Byte offset of each line's start (after each `\n`), built on first use.
    line_starts: OnceCell<Vec<usize>>,
    /// For a non-ASCII text, the byte offset of every [`CHAR_STEP`]-th char, built on first use.
    char_steps: OnceCell<Vec<usize>>,
}

/// Chars between two entries of [`Source::char_steps`]: a lookup walks at most this many.
const CHAR_STEP: usize = 64;

impl<'t> Source<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Source { text, ascii: text.is_ascii(), line_starts: OnceCell::new(), char_steps: OnceCell::new() }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            let mut starts = Vec::with_capacity(self.text.len() / 32 + 1);
            starts.push(0);
            starts.extend(self.text.match_indices('\n').map(|(i, _)| i + 1));
            starts
        })
    }

    fn char_steps(&self) -> &[usize] {
        self.char_steps.get_or_init(|| self.text.char_indices().step_by(CHAR_STEP).map(|(b, _)| b).collect())
    }

    /// The byte offset of the char with index `chars` (the text's length past its end).
    pub(super) fn byte_at_char(&self, chars: usize) -> usize {
        if self.ascii {
            return chars.min(self.text.len());
        }
        let Some(&from) = self.char_steps().get(chars / CHAR_STEP) else { return self.text.len() };
        self.text[from..].char_indices().nth(chars % CHAR_STEP).map_or(self.text.len(), |(i, _)| from + i)
    }

    /// The index of the char starting at byte offset `byte` (a char boundary).
    fn char_at_byte(&self, byte: usize) -> usize {
        if self.ascii {
            return byte;
        }
        let steps = self.char_steps();
        let step = steps.partition_point(|&b| b <= byte).saturating_sub(1);
        let from = steps.get(step).copied().unwrap_or(0);
        step * CHAR_STEP + self.text[from..byte].chars().count()
    }

    /// The byte offset of a mark whose char index is `index` (clamped to the text).
    fn byte_of(&self, mark: Mark, index: usize) -> usize {
        if self.ascii {
            return index.min(self.text.len());
        }
        // Through the line and column, as always, not the index: the two disagree after a lone
        // `\r`, a line break to yaml-rust2 but not in `line_starts`.
        let Some(&start) = self.line_starts().get(mark.line.saturating_sub(1)) else { return self.text.len() };
        self.byte_at_char(self.char_at_byte(start) + mark.col.saturating_sub(1))
    }

    /// The mark (lines counted by `\n`, columns in chars) of the byte offset `byte`.
    pub(super) fn mark_of(&self, byte: usize) -> Mark {
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= byte);
        let start = starts[line - 1];
        let col = if self.ascii { byte - start } else { self.char_at_byte(byte) - self.char_at_byte(start) };
        Mark { line, col: col + 1 }
    }

    /// yaml-rust2 marks a sequence that is not indented under its key (`key:\n- x`) after
    /// its first `- `, where its first item starts; PyYAML marks the `-`. Given the sequence's
    /// mark and its first item's, returns the dash's mark when that is the case.
    pub(super) fn indentless_dash(&self, seq: Mark, seq_index: usize, first_item: Mark) -> Option<Mark> {
        let at = self.byte_of(seq, seq_index);
        let bytes = self.text.as_bytes();
        let here = bytes.get(at).copied();
        // A proper block sequence is marked at its `-`, a flow one at its `[`; an indentless
        // one at its first item (which may itself be a `-`, or an anchor/tag before it).
        if matches!(here, Some(b'-' | b'[')) && first_item != seq {
            return None;
        }
        let before = self.text[..at].trim_end_matches([' ', '\t']);
        before.ends_with('-').then(|| self.mark_of(before.len() - 1))
    }

    /// yaml-rust2 marks a block scalar (`|`, `>`) at its content; PyYAML at the indicator.
    /// Finds the indicator on the content's line (before it) or the last non-blank line above.
    pub(super) fn block_indicator(&self, content: Mark, index: usize) -> Option<Mark> {
        let at = self.byte_of(content, index);
        let mut line_end = at;
        let mut line_start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        loop {
            let line = &self.text[line_start..line_end];
            if let Some(i) = block_header_indicator(line) {
                return Some(self.mark_of(line_start + i));
            }
            if line_start == 0 || (!line.trim().is_empty() && line_end != at) {
                return None;
            }
            line_end = line_start - 1;
            line_start = self.text[..line_end].rfind('\n').map_or(0, |i| i + 1);
        }
    }
}

/// The byte index of a block scalar indicator ending a header line such as
/// `key: !tag |2- # comment`.
fn block_header_indicator(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let mut found = None;
    for (i, &c) in b.iter().enumerate() {
        if c != b'|' && c != b'>' {
            continue;
        }
        if i > 0 && !matches!(b[i - 1], b' ' | b'\t' | b':' | b'-' | b'?') {
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && matches!(b[j], b'0'..=b'9' | b'+' | b'-') {
            j += 1;
        }
        let rest = line[j..].trim_start_matches([' ', '\t', '\r']);
        if rest.is_empty() || (rest.starts_with('#') && j < b.len() && b[j] != b'#') {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(line: usize, col: usize) -> Mark {
        Mark { line, col }
    }

    #[test]
    fn source_positions_agree_with_counting_from_the_start() {
        let long = format!("k: [{}]\n- ü\n", "é, x".repeat(3 * CHAR_STEP));
        for text in ["", "a", "a: b\n- c\r\nd\n\n", "é: ü\n  - 日本\r- x\n\n", "x\n\u{feff}é", long.as_str()] {
            let src = Source::new(text);
            let mut chars = 0;
            for byte in (0..=text.len()).filter(|&b| text.is_char_boundary(b)) {
                let before = &text[..byte];
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let mark = m(before.matches('\n').count() + 1, before[line_start..].chars().count() + 1);
                assert_eq!(src.mark_of(byte), mark, "{text:?} at {byte}");
                assert_eq!(src.char_at_byte(byte), chars, "{text:?} at {byte}");
                assert_eq!(src.byte_at_char(chars), byte, "{text:?} at {byte}");
                assert_eq!(src.byte_of(mark, chars), byte, "{text:?} at {byte}");
                chars += 1;
            }
            // Past the end: the text's length.
            assert_eq!(src.byte_at_char(chars + CHAR_STEP), text.len());
            assert_eq!(src.byte_of(m(text.lines().count() + 2, 1), chars + 1), text.len());
        }
    }
}
