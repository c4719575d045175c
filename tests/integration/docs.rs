//! The documentation: every relative link and `#anchor` in README.md, CONTRIBUTING.md and docs/
//! resolves, and the reference pages name everything the code knows — the custom resource's
//! properties and source keys, the event kinds and manual requests the re-sync accepts, the
//! templates' parameters and the environment variables the functions read. The lists are taken
//! from the code and the templates, so a new property, event kind, parameter or variable fails
//! here until it is documented.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};
use stagewire::config::ENV_VARS;
use stagewire::domain::source::SOURCE_KINDS;
use stagewire::props::PROPERTIES;
use stagewire::resync::Input;
use stagewire::resync::{Trigger, ACTIONABLE_STACK_STATUSES, EVENT_KINDS};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md, CONTRIBUTING.md and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ holds the reference pages");
    pages.extend(docs);
    pages
}

/// The lines of a page outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => out.push(line),
            _ => {}
        }
    }
    out
}

/// A line without its inline code spans (a run of backticks up to the same run).
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of a page's links: inline `[text](target)` and reference definitions
/// `[label]: target`, outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let line = without_code(line);
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if let Some(def) = trimmed.find("]:") {
                if let Some(target) = trimmed[def + 2..].split_whitespace().next() {
                    out.push(target.trim_matches(['<', '>']).to_string());
                    continue;
                }
            }
        }
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push(target.trim_matches(['<', '>']).to_string());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor for a heading: the rendered text lowercased, every character but letters,
/// digits, `-`, `_` and spaces dropped, spaces turned into `-`.
fn slug(heading: &str) -> String {
    // Rendered text: code spans keep their content, links their text.
    let mut text = heading.replace('`', "");
    while let (Some(open), Some(mid)) = (text.find('['), text.find("](")) {
        let Some(close) = text[mid..].find(')').map(|c| mid + c) else {
            break;
        };
        if open > mid {
            break;
        }
        text = format!(
            "{}{}{}",
            &text[..open],
            &text[open + 1..mid],
            &text[close + 1..]
        );
    }
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings, repeated ones numbered as GitHub numbers them.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for line in prose(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#').trim());
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What is wrong with one link of `page`, if anything.
fn broken(page: &Path, target: &str) -> Option<String> {
    if target.is_empty() {
        return Some("an empty link".into());
    }
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        page.to_path_buf()
    } else {
        normalize(&page.parent().expect("a page's folder").join(path))
    };
    if !file.starts_with(root()) {
        return Some(format!("{} is outside the repository", file.display()));
    }
    if !file.exists() {
        return Some(format!("{} does not exist", file.display()));
    }
    let anchor = anchor?;
    if file.extension().is_none_or(|x| x != "md") {
        return Some(format!(
            "#{anchor} points into {}, which has no headings",
            file.display()
        ));
    }
    let known = anchors(&read(&file));
    (!known.iter().any(|a| a == anchor)).then(|| {
        format!(
            "{} has no heading #{anchor} (its anchors: {})",
            file.display(),
            known.join(", ")
        )
    })
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        for target in links(&read(&page)) {
            checked += 1;
            if let Some(why) = broken(&page, &target) {
                problems.push(format!(
                    "{}: ({target}): {why}",
                    page.strip_prefix(root()).unwrap_or(&page).display()
                ));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser blind?"
    );
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Custom::StageBinding reference"),
        "customstagebinding-reference"
    );
    assert_eq!(
        slug(r#"Troubleshooting `{"message": "Internal server error"}`"#),
        "troubleshooting-message-internal-server-error"
    );
    assert_eq!(slug("The spoke's parameters"), "the-spokes-parameters");
    assert_eq!(slug("The `stagewire` CLI"), "the-stagewire-cli");
    assert_eq!(slug("snake_case and a-b"), "snake_case-and-a-b");
    assert_eq!(
        anchors("# A\n```\n# not a heading\n```\n## A\n### B #\n"),
        ["a", "a-1", "b"]
    );
    assert_eq!(
        links("[x](a.md#b) `[y](no.md)` [z][r]\n\n[r]: c.md\n```\n[w](fenced.md)\n```"),
        ["a.md#b", "c.md"]
    );
}

fn page(name: &str) -> String {
    read(&root().join("docs").join(name))
}

/// Whether some table row of `text` (outside code blocks) names `name` in a code span.
fn in_table(text: &str, name: &str) -> bool {
    let span = format!("`{name}`");
    prose(text)
        .iter()
        .any(|l| l.trim_start().starts_with('|') && l.contains(&span))
}

/// Whether `text` names `name` in a code span outside code blocks.
fn in_prose(text: &str, name: &str) -> bool {
    let span = format!("`{name}`");
    prose(text).iter().any(|l| l.contains(&span))
}

fn missing<'a>(
    names: impl IntoIterator<Item = &'a str>,
    found: impl Fn(&str) -> bool,
) -> Vec<&'a str> {
    names.into_iter().filter(|n| !found(n)).collect()
}

#[test]
fn the_reference_names_every_property_and_source_key() {
    let doc = page("custom-resource.md");
    // Each top-level property has its row in the properties table.
    let row = |p: &str| {
        prose(&doc)
            .iter()
            .any(|l| l.starts_with(&format!("| `{p}` |")))
    };
    let props = missing(PROPERTIES.iter().copied(), row);
    assert!(
        props.is_empty(),
        "docs/custom-resource.md has no table row for the properties {props:?}"
    );
    let keys: Vec<&str> = SOURCE_KINDS.iter().flat_map(|k| k.keys()).collect();
    assert!(keys.len() >= 8, "source keys from the code: {keys:?}");
    let keys = missing(keys, |k| in_prose(&doc, k));
    assert!(
        keys.is_empty(),
        "docs/custom-resource.md does not name the source keys {keys:?}"
    );
}

/// The manual request forms the re-sync names when it is given one it does not understand.
fn manual_forms_from_the_code() -> Vec<String> {
    let Trigger::Ignored(why) = Input::from(json!({"resync": null})).trigger() else {
        panic!("a malformed manual request is ignored");
    };
    // Every balanced `{...}` of the message is a form.
    let mut forms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in why.char_indices() {
        match c {
            '{' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    forms.push(why[start..=i].to_string());
                }
            }
            _ => {}
        }
    }
    assert!(!forms.is_empty(), "no request forms in {why:?}");
    forms
}

/// The `{"resync": ...}` code spans of a page.
fn manual_forms_in(text: &str) -> Vec<String> {
    prose(text)
        .iter()
        .flat_map(|l| l.split('`').skip(1).step_by(2))
        .filter(|s| s.starts_with(r#"{"resync""#))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_reference_names_every_event_kind_and_manual_request() {
    let doc = page("resync.md");
    let lines = prose(&doc);
    let kinds: Vec<String> = EVENT_KINDS
        .iter()
        .filter(|k| {
            !lines.iter().any(|l| {
                l.contains(&format!("`{}`", k.source))
                    && l.contains(&format!("\"{}\"", k.detail_type))
            })
        })
        .map(|k| format!("{} \"{}\"", k.source, k.detail_type))
        .collect();
    assert!(
        kinds.is_empty(),
        "docs/resync.md has no line naming both the source and the detail type of {kinds:?}"
    );
    let statuses = missing(ACTIONABLE_STACK_STATUSES.iter().copied(), |s| {
        in_prose(&doc, s)
    });
    assert!(
        statuses.is_empty(),
        "docs/resync.md does not name the stack statuses {statuses:?}"
    );

    let documented = manual_forms_in(&doc);
    let undocumented: Vec<String> = manual_forms_from_the_code()
        .into_iter()
        .filter(|f| !documented.contains(f))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/resync.md does not show the manual requests {undocumented:?}"
    );
    for form in documented {
        let event: Value = serde_json::from_str(&form)
            .unwrap_or_else(|e| panic!("docs/resync.md shows {form}, which is not JSON: {e}"));
        assert!(
            matches!(Input::from(event.clone()), Input::Manual(_))
                && !matches!(Input::from(event.clone()).trigger(), Trigger::Ignored(_)),
            "docs/resync.md shows {form}, which the re-sync ignores"
        );
    }
}

/// The parameter names of a template (tags such as `!Ref` are tolerated by serde_yaml).
fn parameters(template: &str) -> Vec<String> {
    let t: serde_yaml::Value = serde_yaml::from_str(&read(&root().join(template)))
        .unwrap_or_else(|e| panic!("{template}: {e}"));
    let params = t["Parameters"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{template} has Parameters"));
    params
        .keys()
        .map(|k| k.as_str().expect("a parameter name").to_string())
        .collect()
}

#[test]
fn the_reference_names_every_template_parameter() {
    for (template, doc) in [
        ("template.yaml", "operations.md"),
        ("spoke.yaml", "multi-account.md"),
    ] {
        let names = parameters(template);
        assert!(!names.is_empty(), "{template} has parameters");
        let text = page(doc);
        let absent = missing(names.iter().map(String::as_str), |p| in_table(&text, p));
        assert!(
            absent.is_empty(),
            "docs/{doc} has no table row for the {template} parameters {absent:?}"
        );
    }
}

#[test]
fn the_reference_names_every_environment_variable() {
    let text = page("operations.md");
    let absent = missing(ENV_VARS.iter().copied(), |v| in_table(&text, v));
    assert!(
        absent.is_empty(),
        "docs/operations.md has no table row for the environment variables {absent:?}"
    );
}

#[test]
fn the_readme_is_a_landing_page() {
    let readme = read(&root().join("README.md"));
    assert!(
        readme.len() <= 15_000,
        "README.md is {} bytes: keep it a landing page (at most 15,000) and move the rest to docs/",
        readme.len()
    );
    let top: Vec<&str> = readme.lines().take(6).collect();
    for command in ["scripts/demo.sh", "scripts/test.sh"] {
        assert!(
            top.iter().any(|l| l.starts_with(command)),
            "README.md opens with {command}"
        );
    }
    let rust = env!("CARGO_PKG_RUST_VERSION");
    assert!(
        readme.contains(&format!("Rust {rust} or newer")),
        "README.md names the Rust version Cargo.toml requires ({rust})"
    );
}
