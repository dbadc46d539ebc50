//! `contrib/impulse.service` is a unit systemd accepts, pointing at a binary that exists and a
//! configuration check that passes (`systemd-analyze verify`).

use std::process::Command;

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is needed in CI"
        );
        eprintln!("SKIPPED: systemd-analyze not installed (apt-get install systemd)");
        return;
    }
    let unit = include_str!("../contrib/impulse.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/impulse serve --config"));
    assert!(unit.contains("ExecStartPre=/usr/local/bin/impulse config check --config"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("impulse.service");
    // The same unit with the binary this test built in place of the installed one.
    let unit = unit.replace("/usr/local/bin/impulse", env!("CARGO_BIN_EXE_impulse"));
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Messages about the host's other units (none of ours) are not the unit's fault.
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("impulse.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{err}");
}
