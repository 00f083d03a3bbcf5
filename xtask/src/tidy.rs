//! `cargo xtask tidy`: checks that keep the docs true and the sources in shape, in the spirit of
//! rust-analyzer's tidy tests. `cargo xtask ci` runs it first; every problem is reported as
//! `file:line: what is wrong`, all at once.
//!
//! - **Links.** A relative Markdown link must name a file or folder that exists, inside the
//!   repository. A backticked path in Markdown (`docs/tools.md`, `registry.rs`) must exist too.
//! - **Machine paths.** No absolute path of a particular machine (a home, `/tmp`, this build
//!   box's checkout) in Markdown or Rust, except the few in [`ALLOWED_MACHINE_PATHS`].
//! - **Lists with one source.** A Markdown table headed `tool` lists exactly the registry's
//!   tools ([`registry_tools`]: the checked-in tool snapshots, which the snapshot test keeps
//!   equal to the registry); a table headed `variable` lists exactly the environment variables
//!   the server reads (its `ENV_VARS` constant and the `env = "…"` of its command line).
//! - **Module docs.** Every `.rs` file starts with a `//!` line.
//!
//! `target/`, `.cache/`, `.git/` and `node_modules/` are never read. The Markdown reading is in
//! `tidy/markdown.rs`.

mod markdown;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use markdown::{broken_links, missing_code_paths, tables_headed};

use crate::workspace_root;

/// Folders that are never checked (build output, installed tools, git's own files).
const SKIPPED_DIRS: [&str; 4] = ["target", ".cache", ".git", "node_modules"];

/// Where the tool definition snapshots live, one `<tool name>.json` each.
pub(crate) const TOOL_SNAPSHOTS: &str = "webops-mcp-core/tests/snapshots/tools";

/// The server crate's sources, where its `ENV_VARS` constant is (in whichever file).
const SERVER_SRC: &str = "webops-mcp-server/src";

/// This file: it spells out the machine paths it looks for, so that check skips it.
const THIS_FILE: &str = "xtask/src/tidy.rs";

/// Absolute machine paths that are allowed: (file, the text, why).
const ALLOWED_MACHINE_PATHS: [(&str, &str, &str); 1] = [(
    "docs/deployment.md",
    "/Users/me/.config/webops-mcp/config.toml",
    "Claude Desktop needs an absolute path; `me` is a placeholder for the reader's user",
)];

/// The folders, below `/`, whose paths belong to one machine.
const MACHINE_DIRS: [&str; 5] = ["work", "home", "root", "tmp", "Users"];

/// Extensions of backticked paths that must exist (with a `/`, or bare names of our sources).
const PATH_EXTENSIONS: [&str; 10] = [
    "md", "rs", "toml", "py", "yml", "yaml", "json", "sh", "txt", "lock",
];
const BARE_NAME_EXTENSIONS: [&str; 3] = ["md", "rs", "py"];

/// `cargo xtask tidy`.
pub(crate) fn main() -> Result<()> {
    let root = workspace_root();
    let problems = check(&root)?;
    if problems.is_empty() {
        eprintln!("tidy: OK");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    bail!("tidy: {} problem(s)", problems.len())
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Problem {
    /// Relative to the repository, with `/`.
    file: String,
    /// From 1.
    line: usize,
    message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every check over the repository at `root`.
pub(crate) fn check(root: &Path) -> Result<Vec<Problem>> {
    let files = walk(root)?;
    let names: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let tools: BTreeSet<String> = registry_tools(root)?.into_iter().map(|t| t.name).collect();
    let env_vars = server_env_vars(root)?;
    let mut problems = Vec::new();
    for path in &files {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        let rel = relative(root, path);
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut found: Vec<(usize, String)> = Vec::new();
        match ext {
            "md" => {
                let dir = path.parent().unwrap_or(root);
                found.extend(broken_links(root, dir, &text));
                found.extend(missing_code_paths(root, dir, &text, &names));
                found.extend(list_mismatches(
                    &text,
                    "tool",
                    "a tool of the registry",
                    &tools,
                ));
                found.extend(list_mismatches(
                    &text,
                    "variable",
                    "an environment variable the server reads",
                    &env_vars,
                ));
                found.extend(machine_paths(&rel, &text));
            }
            "rs" => {
                found.extend(machine_paths(&rel, &text));
                found.extend(missing_module_doc(&text));
            }
            _ => {}
        }
        problems.extend(found.into_iter().map(|(line, message)| Problem {
            file: rel.clone(),
            line,
            message,
        }));
    }
    problems.sort();
    Ok(problems)
}

/// Every `.md` and `.rs` file below `root`, outside [`SKIPPED_DIRS`].
fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            if entry.file_type()?.is_dir() {
                if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                    pending.push(path);
                }
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("md" | "rs")) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

// ---------------------------------------------------------------------------------------------
// The registry's tools and the server's environment variables

/// A tool of the registry, as its checked-in snapshot describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistryTool {
    pub(crate) name: String,
    /// `read`, `write` or `destructive`.
    pub(crate) access: String,
}

/// The registry's tools, sorted by name: one snapshot per tool in [`TOOL_SNAPSHOTS`] (the
/// snapshot test fails when they and the registry differ; `cargo xtask schema` rewrites them).
pub(crate) fn registry_tools(root: &Path) -> Result<Vec<RegistryTool>> {
    let dir = root.join(TOOL_SNAPSHOTS);
    let mut tools = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let (Some(name), Some(access)) = (json["name"].as_str(), json["access"].as_str()) else {
            bail!("{} has no \"name\" or \"access\"", path.display());
        };
        if stem.as_deref() != Some(name) {
            bail!("{} describes the tool {name}", path.display());
        }
        tools.push(RegistryTool {
            name: name.to_owned(),
            access: access.to_owned(),
        });
    }
    if tools.is_empty() {
        bail!("no tool snapshots in {}", dir.display());
    }
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tools)
}

/// The environment variables the server reads: its `ENV_VARS` constant (found in whichever
/// file of its sources holds it) and every `env = …` of its command line. Their items may be
/// string literals or names of `&str` constants of the crate.
fn server_env_vars(root: &Path) -> Result<BTreeSet<String>> {
    let mut consts = BTreeMap::new();
    let mut items = Vec::new();
    let mut found_const = false;
    for path in walk(&root.join(SERVER_SRC))? {
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        consts.extend(str_consts(&text));
        if let Some(list) = env_vars_const(&text) {
            found_const = true;
            items.extend(list);
        }
        items.extend(clap_env_items(&text));
    }
    if !found_const {
        bail!("found no `const ENV_VARS` in {SERVER_SRC}");
    }
    items
        .iter()
        .map(|item| match item.strip_prefix('"') {
            Some(literal) => Ok(literal.trim_end_matches('"').to_owned()),
            None => {
                let name = item.rsplit("::").next().unwrap_or(item);
                consts
                    .get(name)
                    .cloned()
                    .with_context(|| format!("cannot resolve `{item}` in {SERVER_SRC}"))
            }
        })
        .collect()
}

/// The items of `const ENV_VARS… = [ … ];` in `text`, as written (literals keep their quotes).
fn env_vars_const(text: &str) -> Option<Vec<String>> {
    let start = text.find("const ENV_VARS")?;
    let rest = &text[start..];
    let open = rest.find("= [")? + 3;
    let close = rest[open..].find("];")? + open;
    Some(
        rest[open..close]
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty() && !item.starts_with("//"))
            .map(str::to_owned)
            .collect(),
    )
}

/// The values of clap's `env = …` attributes in `text`, as written.
fn clap_env_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("env = ") {
        // An attribute argument (`#[arg(long, env = …)]`), not `let env = …`.
        let argument = rest[..at].ends_with(", ") || rest[..at].ends_with('(');
        rest = &rest[at + "env = ".len()..];
        if argument {
            let end = rest.find([',', ')', '\n']).unwrap_or(rest.len());
            items.push(rest[..end].trim().to_owned());
            rest = &rest[end..];
        }
    }
    items
}

/// Every `const NAME: &str = "value";` in `text`.
fn str_consts(text: &str) -> Vec<(String, String)> {
    let mut consts = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("const ") {
        rest = &rest[at + "const ".len()..];
        let Some((name, after)) = rest.split_once(':') else {
            break;
        };
        let after = after.trim_start();
        let Some(value) = after
            .strip_prefix("&str = \"")
            .or_else(|| after.strip_prefix("&'static str = \""))
        else {
            continue;
        };
        if let Some(end) = value.find('"') {
            consts.push((name.trim().to_owned(), value[..end].to_owned()));
        }
    }
    consts
}

/// Tables headed `header` that do not list exactly `expected` (each once).
fn list_mismatches(
    text: &str,
    header: &str,
    what: &str,
    expected: &BTreeSet<String>,
) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (line, rows) in tables_headed(text, header) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (row, name) in &rows {
            if !expected.contains(name) {
                problems.push((*row, format!("`{name}` is not {what}")));
            }
            if seen.insert(name, *row).is_some() {
                problems.push((*row, format!("`{name}` is listed twice")));
            }
        }
        let missing: Vec<&str> = expected
            .iter()
            .map(String::as_str)
            .filter(|name| !seen.contains_key(name))
            .collect();
        if !missing.is_empty() {
            problems.push((
                line,
                format!("this `{header}` table lacks {}", missing.join(", ")),
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Any text

/// Absolute paths of one machine (`/home/…`, `/tmp/…`, …) in `text`, a file at `rel`, except
/// those in [`ALLOWED_MACHINE_PATHS`].
fn machine_paths(rel: &str, text: &str) -> Vec<(usize, String)> {
    if rel == THIS_FILE {
        return Vec::new();
    }
    let prefixes: Vec<String> = MACHINE_DIRS.iter().map(|d| format!("/{d}/")).collect();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for prefix in &prefixes {
            for (at, _) in line.match_indices(prefix.as_str()) {
                // Only a path's start: not `/tmp/` inside a URL or a longer path.
                let before = line[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || "./-_~%".contains(c)) {
                    continue;
                }
                let path: String = line[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !"\"'`)]>,;".contains(*c))
                    .collect();
                let allowed = ALLOWED_MACHINE_PATHS
                    .iter()
                    .any(|(file, allowed, _)| *file == rel && path == *allowed);
                if !allowed {
                    problems.push((i + 1, format!("absolute machine path {path}")));
                }
            }
        }
    }
    problems
}

/// A `.rs` file whose first non-blank line is not a `//!` module doc.
fn missing_module_doc(text: &str) -> Option<(usize, String)> {
    match text.lines().enumerate().find(|(_, l)| !l.trim().is_empty()) {
        Some((_, line)) if line.trim_start().starts_with("//!") => None,
        Some((i, _)) => Some((
            i + 1,
            "the file does not start with a `//!` doc line".into(),
        )),
        None => Some((1, "the file is empty: give it a `//!` doc line".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::markdown::markdown_links;
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn links_are_found_outside_code() {
        let text = "See [a](docs/a.md) and [b](<b c.md> \"title\").\n\
                    ```\n[not](x.md)\n```\n\
                    `[no](y.md)` [c](https://x.y/(z)) [d](#anchor)\n\
                    [ref]: ../up.md\n";
        let links = markdown_links(text);
        assert_eq!(
            links,
            vec![
                (1, "docs/a.md".to_owned()),
                (1, "b c.md".to_owned()),
                (5, "https://x.y/(z)".to_owned()),
                (5, "#anchor".to_owned()),
                (6, "../up.md".to_owned()),
            ]
        );
    }

    #[test]
    fn broken_and_escaping_links_are_reported() {
        let root = workspace_root();
        let dir = root.join("docs");
        let text = "[ok](tools.md#x) [up](../README.md) [gone](nope.md)\n\
                    [out](../../elsewhere.md) [web](https://example.com) [here](#top)\n";
        let problems = broken_links(&root, &dir, text);
        assert_eq!(
            problems,
            vec![
                (1, "link to nope.md: no such file".to_owned()),
                (
                    2,
                    "link to ../../elsewhere.md leaves the repository".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn code_paths_must_exist() {
        let root = workspace_root();
        let names = set(&["main.rs", "tidy.rs"]);
        let text = "`xtask/src/tidy.rs`, `src/main.rs`, `tidy.rs`, `gone.rs`, \
                    `docs/nope.md`, `cargo xtask ci`, `/etc/x.toml`, `audit.jsonl`, \
                    `docs/`, `docs/nodir/`, `deployments/`, `tests/fixtures/<name>`\n";
        let problems = missing_code_paths(&root, &root.join("xtask"), text, &names);
        let spans: Vec<&str> = problems
            .iter()
            .map(|(_, m)| m.split('`').nth(1).unwrap_or_default())
            .collect();
        assert_eq!(spans, vec!["gone.rs", "docs/nope.md", "docs/nodir/"]);
    }

    #[test]
    fn tables_must_list_exactly_the_expected_names() {
        let text = "| tool | what |\n|---|---|\n| `a` | x |\n| [`b`](#b) | y |\n\
                    | `z` | z |\n| `a` | again |\n\nafter\n\n\
                    | tool call | cost |\n|---|---|\n| `q` | 1 |\n";
        let problems = list_mismatches(text, "tool", "a registry tool", &set(&["a", "b", "c"]));
        assert_eq!(
            problems,
            vec![
                (5, "`z` is not a registry tool".to_owned()),
                (6, "`a` is listed twice".to_owned()),
                (1, "this `tool` table lacks c".to_owned()),
            ]
        );
        let good = "| tool |\n|---|\n| `a` |\n| `b` |\n| `c` |\n";
        assert!(list_mismatches(good, "tool", "tool", &set(&["a", "b", "c"])).is_empty());
    }

    #[test]
    fn env_vars_come_from_the_constant_and_clap() {
        let source = "pub(crate) const API_URL: &str = \"A_URL\";\n\
                      pub const CONFIG: &'static str = \"C_CONFIG\";\n\
                      pub const ENV_VARS: [&str; 2] = [\n    env::API_URL,\n    \"B_KEY\",\n];\n\
                      #[arg(long, env = CONFIG, value_name = \"FILE\")]\n\
                      #[arg(long, env = \"D_LEVEL\")]\n\
                      let env = std::env::vars();\n";
        assert_eq!(
            env_vars_const(source),
            Some(vec!["env::API_URL".to_owned(), "\"B_KEY\"".to_owned()])
        );
        assert_eq!(
            clap_env_items(source),
            vec!["CONFIG".to_owned(), "\"D_LEVEL\"".to_owned()]
        );
        assert_eq!(
            str_consts(source),
            vec![
                ("API_URL".to_owned(), "A_URL".to_owned()),
                ("CONFIG".to_owned(), "C_CONFIG".to_owned())
            ]
        );
        assert_eq!(env_vars_const("no constant here"), None);
    }

    #[test]
    fn the_server_env_vars_are_found() {
        let vars = server_env_vars(&workspace_root()).expect("ENV_VARS");
        assert!(vars.len() > 1, "{vars:?}");
        assert!(
            vars.iter().all(|v| !v.is_empty() && !v.contains('"')),
            "{vars:?}"
        );
    }

    #[test]
    fn machine_paths_are_found_at_a_path_start_only() {
        let home = format!("/{}/", MACHINE_DIRS[1]);
        let tmp = format!("/{}/", MACHINE_DIRS[3]);
        let text = format!(
            "a {home}me/x\nurl https://example.com{tmp}x\n\"{tmp}a.toml\"\nrelative x{tmp}y\n"
        );
        let problems = machine_paths("docs/x.md", &text);
        let lines: Vec<usize> = problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 3]);
        assert!(
            problems[1].1.ends_with(&format!("{tmp}a.toml")),
            "{problems:?}"
        );
        let (file, allowed, _) = ALLOWED_MACHINE_PATHS[0];
        assert!(machine_paths(file, &format!("\"{allowed}\"")).is_empty());
        assert_eq!(
            machine_paths("other.md", &format!("\"{allowed}\"")).len(),
            1
        );
    }

    #[test]
    fn rust_files_start_with_a_module_doc() {
        assert_eq!(missing_module_doc("\n//! Docs.\nfn x() {}\n"), None);
        assert_eq!(
            missing_module_doc("// a comment\n//! late\n").map(|p| p.0),
            Some(1)
        );
        assert!(missing_module_doc("").is_some());
    }

    #[test]
    fn the_load_mix_runs_exactly_the_registry_read_tools() {
        let mut read: Vec<String> = registry_tools(&workspace_root())
            .expect("tool snapshots")
            .into_iter()
            .filter(|t| t.access == "read")
            .map(|t| t.name)
            .collect();
        read.sort();
        let mut mix: Vec<&str> = crate::harness::READ_TOOLS.to_vec();
        mix.sort_unstable();
        assert_eq!(read, mix, "harness::READ_TOOLS must follow the registry");
    }

    #[test]
    fn the_registry_tools_are_read_from_the_snapshots() {
        let tools = registry_tools(&workspace_root()).expect("tool snapshots");
        assert!(tools.iter().any(|t| t.access == "read"));
        assert!(
            tools
                .iter()
                .all(|t| t.name.starts_with("webops_") && !t.access.is_empty())
        );
    }
}
