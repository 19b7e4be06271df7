//! Ticking a Spec Kit task's box in its own file, in the file's own spelling.

use super::line::task_line;

/// `text` with the box of task `id` (on 1-based line `line`) ticked: `[x]` or `[X]`, whichever
/// the file's ticked task lines use most (`[X]`, what Spec Kit's `/implement` writes, when none
/// is ticked yet). Only that one character changes. `None` when line `line` is not task `id`'s
/// task line or its box is ticked already.
pub fn tick(text: &str, line: usize, id: &str) -> Option<String> {
    let mut start = 0;
    let mut target = None;
    let (mut lower, mut upper) = (0usize, 0usize);
    for (i, l) in text.split_inclusive('\n').enumerate() {
        let bare = l.trim_end_matches(['\n', '\r']);
        if let Some(t) = task_line(bare) {
            match t.mark {
                'x' => lower += 1,
                'X' => upper += 1,
                _ => {}
            }
            if i + 1 == line && t.id == id && !matches!(t.mark, 'x' | 'X') {
                // The box is the first `[` of the line (the dash and spaces come before it).
                target = bare.find('[').map(|b| start + b + 1);
            }
        }
        start += l.len();
    }
    let at = target?;
    let mark = if lower > upper { "x" } else { "X" };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..at]);
    out.push_str(mark);
    // The old mark is one ASCII byte (` ` or `~`).
    out.push_str(&text[at + 1..]);
    Some(out)
}
