//! What users get: the AWS Serverless Application Repository metadata of the SAM template, the
//! license and the changelog agree with Cargo.toml, and the CLI reports the crate version.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The template's `Metadata: AWS::ServerlessRepo::Application`.
fn application() -> Value {
    let template: Value = serde_yaml::from_str(&read(&root().join("template.yaml"))).unwrap();
    let app = template["Metadata"]["AWS::ServerlessRepo::Application"].clone();
    assert!(
        app.is_mapping(),
        "template.yaml has no Metadata AWS::ServerlessRepo::Application"
    );
    app
}

fn field(app: &Value, name: &str) -> String {
    app[name]
        .as_str()
        .unwrap_or_else(|| panic!("AWS::ServerlessRepo::Application {name} is not a string"))
        .to_string()
}

/// Whether every character of `s` is ASCII alphanumeric or one of `extra`.
fn made_of(s: &str, extra: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

#[test]
fn sar_semantic_version_is_the_crate_version() {
    assert_eq!(
        field(&application(), "SemanticVersion"),
        VERSION,
        "template.yaml SemanticVersion must equal the workspace version in Cargo.toml"
    );
}

#[test]
fn sar_license_is_cargo_license_and_the_license_file() {
    let app = application();
    assert_eq!(field(&app, "SpdxLicenseId"), env!("CARGO_PKG_LICENSE"));
    assert_eq!(env!("CARGO_PKG_LICENSE"), "Apache-2.0");
    let license = read(&root().join(field(&app, "LicenseUrl")));
    let words: Vec<&str> = license.split_whitespace().collect();
    assert_eq!(
        words[..5],
        ["Apache", "License", "Version", "2.0,", "January"],
        "LicenseUrl names the Apache License 2.0 text"
    );
    for section in [
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "9. Accepting Warranty or Additional Liability.",
        "END OF TERMS AND CONDITIONS",
    ] {
        assert!(license.contains(section), "the license lacks {section:?}");
    }
    assert!(
        read(&root().join("README.md")).contains("Apache License 2.0"),
        "the README names the license"
    );
}

#[test]
fn sar_metadata_is_complete_and_valid_for_publishing() {
    let app = application();
    // The Serverless Application Repository's constraints on CreateApplication's fields.
    let name = field(&app, "Name");
    assert!(
        (1..=140).contains(&name.len()) && made_of(&name, "-"),
        "Name {name:?}"
    );
    let author = field(&app, "Author");
    assert!(
        (1..=127).contains(&author.len())
            && made_of(&author, "-")
            && author == author.to_ascii_lowercase()
            && !author.starts_with('-')
            && !author.ends_with('-')
            && !author.contains("--"),
        "Author {author:?}: lower-case letters, digits and single inner hyphens"
    );
    let description = field(&app, "Description");
    assert!((1..=256).contains(&description.len()));
    assert_eq!(
        description,
        env!("CARGO_PKG_DESCRIPTION"),
        "the application is described as the crate is"
    );
    let labels = app["Labels"].as_sequence().expect("Labels is a list");
    assert!((1..=10).contains(&labels.len()), "1 to 10 labels");
    for label in labels {
        let label = label.as_str().expect("each label is a string");
        assert!(
            (1..=127).contains(&label.len()) && made_of(label, "+-_:/@"),
            "label {label:?}"
        );
    }
    let readme = root().join(field(&app, "ReadmeUrl"));
    assert!(
        read(&readme).starts_with("# stagewire"),
        "ReadmeUrl names README.md"
    );
    for url in ["HomePageUrl", "SourceCodeUrl"] {
        assert_eq!(
            field(&app, url),
            env!("CARGO_PKG_REPOSITORY"),
            "{url} is Cargo.toml's repository"
        );
    }
    assert!(env!("CARGO_PKG_REPOSITORY").starts_with("https://"));
}

#[test]
fn changelog_has_the_crate_version_and_unreleased_changes() {
    let changelog = read(&root().join("CHANGELOG.md"));
    let headings: Vec<&str> = changelog.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(
        headings.first().copied(),
        Some("## [Unreleased]"),
        "the changelog opens with the unreleased changes"
    );
    let current = format!("## [{VERSION}]");
    assert!(
        headings.iter().any(|h| h.starts_with(&current)),
        "CHANGELOG.md has no section {current}; headings: {headings:?}"
    );
}

#[test]
fn cli_version_is_the_crate_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_stagewire"))
        .arg("--version")
        .output()
        .expect("running stagewire --version");
    assert!(output.status.success(), "stagewire --version: {output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("stagewire {VERSION}")
    );
}
