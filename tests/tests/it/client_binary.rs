//! The `pipeline` binary provisioning ships to the client machine (issue
//! 18, item 2): built by `cargo xtask test` the way `cargo xtask provision`
//! builds it (cargo-zigbuild, glibc 2.34, OpenSSL compiled in), it must run
//! on Amazon Linux 2023: no symbol newer than GLIBC_2.34, no library the
//! base image lacks.

use std::process::Command;

use crate::common::portable_bin;

/// Amazon Linux 2023's glibc.
const NEWEST_GLIBC: (u32, u32) = (2, 34);
/// Libraries every Amazon Linux 2023 image has (glibc's own and libgcc's).
const BASE_LIBRARIES: [&str; 6] = ["libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2"];

/// Every GLIBC_x.y[.z] version `objdump -T` names, highest first.
fn glibc_versions(objdump: &str) -> Vec<(u32, u32)> {
    let mut versions: Vec<(u32, u32)> = objdump
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions.dedup();
    versions
}

fn objdump(flag: &str, bin: &std::path::Path) -> String {
    let out = Command::new("objdump").arg(flag).arg(bin).output().expect("objdump runs (binutils)");
    assert!(out.status.success(), "objdump {flag}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn glibc_versions_are_read_from_objdump_output() {
    let sample = "0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.2.5) memcpy\n\
                  0000000000000000      DF *UND*\t0000000000000000  GLIBC_2.35  __libc_start_main\n\
                  0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.17) clock_gettime\n";
    assert_eq!(glibc_versions(sample), [(2, 35), (2, 17), (2, 2)]);
    assert!(glibc_versions("nothing versioned").is_empty());
}

#[test]
fn the_client_binary_needs_no_glibc_newer_than_amazon_linux_2023s() {
    let bin = portable_bin();
    let versions = glibc_versions(&objdump("-T", &bin));
    let newest = *versions.first().expect("a dynamically linked binary names glibc versions");
    assert!(newest <= NEWEST_GLIBC, "{} needs GLIBC_{}.{}, newer than Amazon Linux 2023's 2.34", bin.display(), newest.0, newest.1);

    let headers = objdump("-p", &bin);
    let needed: Vec<&str> = headers.lines().filter_map(|l| l.trim().strip_prefix("NEEDED")).map(str::trim).collect();
    assert!(!needed.is_empty(), "{headers}");
    for lib in &needed {
        assert!(BASE_LIBRARIES.contains(lib), "{} needs {lib}, which the base image may lack (OpenSSL must be built in)", bin.display());
    }

    // And it is the pipeline, with MSK IAM and what the client machine's
    // units run (pipeline-topics, -ingest, -sink): it runs here too.
    for (command, flag) in [(&["sink"][..], "--kafka-auth"), (&["ingest"], "--require-header"), (&["topics", "create"], "--partitions")] {
        let out = Command::new(&bin).args(command).arg("--help").output().unwrap();
        assert!(out.status.success(), "{command:?} --help: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains(flag), "{command:?} --help lacks {flag}");
    }
}

#[test]
fn the_client_binary_names_what_it_was_built_without() {
    // `cargo xtask test` builds it without the stream worker and the batch
    // job: asking for either says which build has them instead of clap's
    // "unrecognized subcommand".
    let bin = portable_bin();
    for (command, hint) in [("stream", "ec2.stream_worker = true"), ("batch", "cargo build -p pipeline")] {
        let out = Command::new(&bin).args([command, "--input", "s3://x"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} ran in a build without it");
        assert!(stderr.contains(&format!("built without `{command}`")) && stderr.contains(hint), "{command}: {stderr}");
    }
    let help = Command::new(&bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let listed = |name: &str| help.lines().any(|l| l.split_whitespace().next() == Some(name));
    assert!(listed("sink") && !listed("stream") && !listed("batch"), "the absent commands are hidden from --help:\n{help}");
}
