//! The Markdown reading behind tidy's checks: prose lines outside fenced code, code spans,
//! links and where they lead, backticked repository paths, and tables headed by a name.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use super::{BARE_NAME_EXTENSIONS, PATH_EXTENSIONS};

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// `line` with its inline code spans blanked out, and the spans themselves.
fn split_code_spans(line: &str) -> (String, Vec<&str>) {
    let mut prose = String::with_capacity(line.len());
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('`') {
        let ticks = rest[open..].len() - rest[open..].trim_start_matches('`').len();
        let delimiter = &rest[open..open + ticks];
        let after = &rest[open + ticks..];
        let Some(close) = after.find(delimiter) else {
            break;
        };
        prose.push_str(&rest[..open]);
        prose.push(' ');
        spans.push(after[..close].trim());
        rest = &after[close + ticks..];
    }
    prose.push_str(rest);
    (prose, spans)
}

/// The destinations of the Markdown links in `text`: inline `[text](dest)` and reference
/// definitions `[label]: dest`, with their line numbers.
pub(super) fn markdown_links(text: &str) -> Vec<(usize, String)> {
    let mut links = Vec::new();
    for (number, line) in prose_lines(text) {
        let (prose, _) = split_code_spans(line);
        let trimmed = prose.trim_start();
        if trimmed.starts_with('[')
            && let Some(end) = trimmed.find("]:")
            && !trimmed[..end].contains("](")
        {
            if let Some(dest) = trimmed[end + 2..].split_whitespace().next() {
                links.push((number, dest.trim_matches(['<', '>']).to_owned()));
            }
            continue;
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let mut depth = 0usize;
            let mut end = None;
            for (i, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    ')' => depth -= 1,
                    _ => {}
                }
            }
            let Some(end) = end else { break };
            let inner = after[..end].trim();
            let dest = if let Some(stripped) = inner.strip_prefix('<') {
                stripped.split('>').next().unwrap_or_default()
            } else {
                inner.split_whitespace().next().unwrap_or_default()
            };
            links.push((number, dest.to_owned()));
            rest = &after[end..];
        }
    }
    links
}

/// `path` with `.` and `..` resolved lexically, or `None` when it climbs above its start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// Where a repository-relative reference `target`, written in a file of `dir`, points: a
/// leading `/` means the repository's root. `None` when it leaves the repository.
fn resolve(root: &Path, dir: &Path, target: &str) -> Option<PathBuf> {
    let dir = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let joined = match target.strip_prefix('/') {
        Some(from_root) => PathBuf::from(from_root),
        None => dir.join(target),
    };
    normalize(&joined).map(|p| root.join(p))
}

/// Relative links of `text` (a file in `dir`) that name no file in the repository.
pub(super) fn broken_links(root: &Path, dir: &Path, text: &str) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (line, dest) in markdown_links(text) {
        if dest.is_empty() || dest.starts_with('#') || dest.contains(':') {
            continue; // an anchor here, or a URL (https:, mailto:, ...)
        }
        let target = dest.split(['#', '?']).next().unwrap_or_default();
        let target = target.replace("%20", " ");
        match resolve(root, dir, &target) {
            None => problems.push((line, format!("link to {dest} leaves the repository"))),
            Some(path) if !path.exists() => {
                problems.push((line, format!("link to {dest}: no such file")));
            }
            Some(_) => {}
        }
    }
    problems
}

/// Backticked paths in the prose of `text` (a file in `dir`) that name nothing in the
/// repository: `a/b.md` relative to the file or to the root, a folder `a/b/`, or a bare
/// `name.rs` that no file of the workspace is called.
pub(super) fn missing_code_paths(
    root: &Path,
    dir: &Path,
    text: &str,
    names: &BTreeSet<String>,
) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (line, prose) in prose_lines(text) {
        for span in split_code_spans(prose).1 {
            // A folder (`docs/`) only when its first part is one of ours: `deployments/` is
            // an API path.
            let first = span.split('/').next().unwrap_or_default();
            let ours = root.join(first).exists() || dir.join(first).exists();
            if !looks_like_repo_path(span) || span.ends_with('/') && !ours {
                continue;
            }
            let found = if span.contains('/') {
                [resolve(root, dir, span), resolve(root, root, span)]
                    .into_iter()
                    .flatten()
                    .any(|p| p.exists())
            } else {
                names.contains(span)
            };
            if !found {
                problems.push((line, format!("`{span}` names no file in the repository")));
            }
        }
    }
    problems
}

/// Whether a code span is a path into this repository (and not a command, a URL, a pattern,
/// an absolute path of a deployment, or a file our programs write).
fn looks_like_repo_path(span: &str) -> bool {
    const NOT_PATH: [char; 11] = [' ', '*', '{', '<', '$', '…', ':', '=', '"', '\'', ','];
    if span.is_empty()
        || span.contains(NOT_PATH)
        || span.starts_with(['/', '~', '-', '.'])
        || span.starts_with("target/")
    {
        return false;
    }
    if span.contains('/') {
        return span.ends_with('/')
            || extension(span).is_some_and(|e| PATH_EXTENSIONS.contains(&e));
    }
    extension(span).is_some_and(|e| BARE_NAME_EXTENSIONS.contains(&e))
}

fn extension(span: &str) -> Option<&str> {
    let name = span.rsplit('/').next()?;
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then_some(ext)
}

/// The first cells of every Markdown table whose header's first cell is `header`: the line of
/// the header, and each row's line and first backticked name.
pub(super) fn tables_headed(text: &str, header: &str) -> Vec<(usize, Vec<(usize, String)>)> {
    let lines = prose_lines(text);
    let mut tables = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        let (number, line) = lines[i];
        let is_header = first_cell(line).is_some_and(|c| c.eq_ignore_ascii_case(header))
            && lines[i + 1].1.trim_start().starts_with("|-")
            && lines[i + 1].0 == number + 1;
        if !is_header {
            i += 1;
            continue;
        }
        let mut rows = Vec::new();
        let mut j = i + 2;
        while j < lines.len() && lines[j].0 == lines[j - 1].0 + 1 {
            let Some(cell) = first_cell(lines[j].1) else {
                break;
            };
            let name = split_code_spans(cell).1.first().map(|s| (*s).to_owned());
            rows.push((lines[j].0, name.unwrap_or_else(|| cell.to_owned())));
            j += 1;
        }
        tables.push((number, rows));
        i = j;
    }
    tables
}

fn first_cell(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix('|')?;
    Some(rest.split('|').next()?.trim())
}
