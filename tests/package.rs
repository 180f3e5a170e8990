//! `cargo package` succeeds for every crate of the workspace, and verifies each one: cargo
//! unpacks every `.crate` and builds it on its own, which is what catches a build script or
//! a `#[path]` that reaches outside its crate (ckpt-core's stub, ckpt-doc's sources). Each
//! `.crate` must also carry both license texts, a README and its manifest.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ckpt_tests::*;

/// The command README's Install section gives. The workspace's profiles (panic = "abort",
/// which libckpt, a no_std cdylib, cannot build without) are not part of a packaged crate,
/// so the verification builds get the same panic strategy from the command line.
const PACKAGE_ARGS: &[&str] = &[
    "package",
    "--workspace",
    "--allow-dirty",
    "--offline",
    "--locked",
    "--config",
    "profile.dev.panic=\"abort\"",
];

/// Every package of the workspace, as `NAME-VERSION` (the name of its `.crate`).
fn workspace_packages(workspace: &Path) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        describe_status(output.status)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages: Vec<String> = metadata["packages"]
        .as_array()
        .expect("cargo metadata lists packages")
        .iter()
        .map(|package| {
            format!(
                "{}-{}",
                package["name"].as_str().unwrap(),
                package["version"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        packages.len() >= 7,
        "the workspace's packages: {packages:?}"
    );
    packages
}

/// Runs `cargo package` in a target directory of its own under the workspace's target/
/// (`package-test`), so that a second run is incremental and never waits for the outer
/// build's lock; its output goes to `log`, shown when it fails.
fn cargo_package(workspace: &Path, target: &Path, log: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let log_file = std::fs::File::create(log).expect("create the cargo package log");
    let mut command = Command::new(cargo);
    command
        .args(PACKAGE_ARGS)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target)
        .current_dir(workspace)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup the log"))
        .stderr(log_file);
    let started = Instant::now();
    let mut child = try_spawn(&mut command).expect("start cargo package");
    let deadline = started + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo package") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "cargo package took more than 600 s; its output:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "cargo {} failed ({}) after {:.0?}; its output:\n{}",
        PACKAGE_ARGS.join(" "),
        describe_status(status),
        started.elapsed(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Makes cargo build our packages again from the sources of this run. Cargo takes a
/// registry crate of a given version to be immutable: it unpacks it once
/// (`$CARGO_HOME/registry/src/-HASH/NAME-VERSION`) and never looks at a build of it again
/// (`target/.fingerprint/NAME-HASH`), so after a change the verification would build the
/// others against the old sources. Both go, for our packages only (and only from local
/// registries, whose directories are named `-HASH`).
fn forget_earlier_builds(packages: &[String], target: &Path) {
    if let Ok(fingerprints) = std::fs::read_dir(target.join("debug/.fingerprint")) {
        for entry in fingerprints.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = packages.iter().any(|p| {
                let crate_name = p.rsplit_once('-').map_or(p.as_str(), |(n, _)| n);
                name.strip_prefix(crate_name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_hexdigit()))
            });
            if ours {
                std::fs::remove_dir_all(entry.path())
                    .unwrap_or_else(|e| panic!("remove {}: {e}", entry.path().display()));
            }
        }
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let Some(Ok(registries)) = home.map(|h| std::fs::read_dir(h.join("registry/src"))) else {
        return;
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for package in packages {
            let unpacked = registry.path().join(package);
            if unpacked.is_dir() {
                std::fs::remove_dir_all(&unpacked)
                    .unwrap_or_else(|e| panic!("remove {}: {e}", unpacked.display()));
            }
        }
    }
}

/// The paths in a `.crate` (a gzipped tar), relative to its `NAME-VERSION/` directory.
fn crate_contents(path: &Path) -> Vec<String> {
    let output = Command::new("tar")
        .arg("tzf")
        .arg(path)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tar");
    assert!(
        output.status.success(),
        "tar tzf {}: {}",
        path.display(),
        describe_status(output.status)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('/').map(|(_, rest)| rest.to_string()))
        .collect()
}

#[test]
fn every_crate_packages_and_verifies() {
    if !have_program("tar") {
        skip(Skip::MissingTool, "tar is not installed");
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target: PathBuf = target_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .join("package-test");
    let packages = workspace_packages(workspace);
    // A .crate left by an earlier run must not stand in for one this run failed to make.
    for package in &packages {
        let _ = std::fs::remove_file(target.join(format!("package/{package}.crate")));
    }

    forget_earlier_builds(&packages, &target);

    let dir = TempDir::new("package");
    cargo_package(workspace, &target, &dir.join("cargo-package.log"));

    for package in &packages {
        let path = target.join(format!("package/{package}.crate"));
        assert!(
            path.is_file(),
            "cargo package did not write {}",
            path.display()
        );
        let contents = crate_contents(&path);
        for required in ["Cargo.toml", "LICENSE-MIT", "LICENSE-APACHE", "README.md"] {
            assert!(
                contents.iter().any(|file| file == required),
                "{} has no {required}: {contents:?}",
                path.display()
            );
        }
    }
}
