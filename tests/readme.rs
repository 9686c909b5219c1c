//! The README stays true: it carries the error-code table, the sandbox's rules and its control routes exactly as
//! the code defines them, documents every exit code, and names the two commands that exist in the repository.

use std::path::Path;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[test]
fn readme_carries_the_error_table_verbatim() {
    let table = ekyc_kiosk::api::markdown_table();
    if std::env::var_os("PRINT_README_TABLES").is_some() {
        println!("{table}");
    }
    assert!(readme().contains(&table), "README's error table differs from src/api/codes.rs:\n{table}");
}

#[test]
fn readme_quotes_the_sandbox_rules_and_control_routes() {
    let r = readme();
    assert!(r.contains(ekyc_kiosk::sandbox::rules_markdown().trim()), "sandbox rules differ from the code");
    assert!(r.contains(ekyc_kiosk::sandbox::CONTROL_MARKDOWN.trim()), "control routes differ from the code");
}

#[test]
fn readme_names_commands_that_exist() {
    let r = readme();
    for script in [".ci/demo", ".ci/test", ".ci/setup"] {
        assert!(r.contains(script), "{script} is not in the README");
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(script).exists(), "{script} does not exist");
    }
    for code in ["| 0 |", "| 2 |", "| 3 |", "| 4 |", "| 5 |"] {
        assert!(r.contains(code), "exit code row {code} missing");
    }
}
