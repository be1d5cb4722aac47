//! Where reports go without `--report`: `reports/` beside the config file (as README says),
//! whatever the working directory, and the summary line names the file. A report directory that
//! cannot be created is an error naming it.

use crate::cli::{file_config, Workspace};
use crate::support::Moto;

#[tokio::test(flavor = "multi_thread")]
async fn default_report_dir_is_beside_the_config_and_named_in_the_summary() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path().join("conf")).unwrap();
    ws.write("conf/export.jsonl", "{\"path\":\"a\",\"value\":\"b\"}\n");
    ws.write("conf/cfg.toml", &file_config(moto.endpoint(), "rd", "", ""));

    // run from the workspace root, config in conf/
    let out = ws
        .command(&["plan", "-c", "conf/cfg.toml"], &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let reports: Vec<_> = std::fs::read_dir(ws.path().join("conf/reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].starts_with("plan-"), "{reports:?}");
    assert!(
        !ws.path().join("reports").exists(),
        "not in the working directory"
    );
    let summary = stderr.lines().last().unwrap_or("");
    assert!(
        summary.contains(&format!("report conf/reports/{}", reports[0])),
        "{summary}"
    );

    // an explicit dir that cannot be created is named
    ws.write("blocker", "a file, not a directory");
    ws.write(
        "conf/cfg.toml",
        &file_config(
            moto.endpoint(),
            "rd",
            "",
            "[report]\ndir = \"../blocker/sub\"\n",
        ),
    );
    let out = ws
        .command(&["plan", "-c", "conf/cfg.toml"], &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("cannot create the report directory conf/../blocker/sub"),
        "{stderr}"
    );
}
