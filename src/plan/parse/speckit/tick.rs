//! Ticking a Spec Kit task's box in its own file, in the file's own spelling.

use super::line::task_line;

/// `text` with the box of task `id` (on 1-based line `line`) ticked: `[x]` or `[X]`, whichever
/// the file's ticked task lines use most (`[X]`, what Spec Kit's `/implement` writes, when none
/// is ticked yet). Only that one character changes. `None` when line `line` is not task `id`'s
/// task line or its box is ticked already.
pub fn tick(text: &str, line: usize, id: &str) -> Option<String> {
    let (at, mark) = ticks(text, &[(line, id)]).into_iter().next()?;
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..at]);
    out.push(char::from(mark));
    // The old mark is one ASCII byte (` ` or `~`).
    out.push_str(&text[at + 1..]);
    Some(out)
}

/// Where each of `tasks` (1-based line, id) has its box, as the byte offset of its mark in
/// `text`, with the mark that ticks it (`x` or `X`, as [`tick`] chooses): one byte to write at
/// each offset. A task whose line is not its task line (the file changed), or whose box is
/// ticked already, has none. In the order of the file.
pub fn ticks(text: &str, tasks: &[(usize, &str)]) -> Vec<(usize, u8)> {
    let wanted: std::collections::HashMap<usize, &str> = tasks.iter().copied().collect();
    let mut start = 0;
    let mut found = Vec::new();
    let (mut lower, mut upper) = (0usize, 0usize);
    for (i, l) in text.split_inclusive('\n').enumerate() {
        let bare = l.trim_end_matches(['\n', '\r']);
        if let Some(t) = task_line(bare) {
            match t.mark {
                'x' => lower += 1,
                'X' => upper += 1,
                _ => {}
            }
            if !matches!(t.mark, 'x' | 'X') && wanted.get(&(i + 1)) == Some(&t.id) {
                // The box is the first `[` of the line (the dash and spaces come before it).
                if let Some(b) = bare.find('[') {
                    found.push(start + b + 1);
                }
            }
        }
        start += l.len();
    }
    let mark = if lower > upper { b'x' } else { b'X' };
    found.into_iter().map(|at| (at, mark)).collect()
}

/// Whether `after` is `before` with some open boxes of its Spec Kit tasks ticked and nothing
/// else changed: what [`ticks`] writes (the tasks as the parser finds them in `before`, so a
/// task line in a code fence is no box). orch's own change to a person's plan file, told from
/// any other by its bytes alone.
pub fn only_ticks(before: &str, after: &str) -> bool {
    if before.len() != after.len() || before == after {
        return false;
    }
    let plan = crate::plan::parse(std::path::Path::new("tasks.md"), before);
    let open: Vec<(usize, &str)> = plan
        .tasks
        .iter()
        .filter(|t| t.speckit.is_some() && !t.done)
        .map(|t| (t.line, t.id.as_str()))
        .collect();
    let boxes: std::collections::HashSet<usize> =
        ticks(before, &open).into_iter().map(|(at, _)| at).collect();
    before
        .bytes()
        .zip(after.bytes())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .all(|(i, (_, b))| boxes.contains(&i) && matches!(b, b'x' | b'X'))
}
