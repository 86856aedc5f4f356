//! `pipeline batch --report`: the page a person looks at, loaded in a real
//! browser (headless Chromium from Debian): every question has its chart,
//! each chart one bar per result row, and the page fetches nothing.

use crate::common;

use std::process::Command;

fn chromium() -> String {
    let bin = std::env::var("PIPELINE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    assert!(
        Command::new(&bin).arg("--version").output().is_ok_and(|o| o.status.success()),
        "{bin} is missing: run the tests with `cargo xtask test`, which installs Debian's chromium"
    );
    bin
}

fn headless(bin: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin).args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]).args(args).output().unwrap()
}

#[test]
fn the_report_renders_a_chart_per_question_with_a_bar_per_row() {
    let browser = chromium();
    let names = common::fresh_names();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    let out = Command::new(common::pipeline_bin())
        .args(["generate", "--uid", names.uid(), "--count", "400", "--seed", "5", "--output"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = dir.path().join("report.html");
    let results = dir.path().join("results");
    let out = Command::new(common::pipeline_bin())
        .args(["batch", "--uid", names.uid(), "--print", "csv", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&results)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&report.display().to_string()), "the path is printed");
    // Rows per result, from the job's own CSV output: `# title (id)`, a
    // header line, then a line per row.
    let printed = String::from_utf8(out.stdout).unwrap();
    let mut rows: std::collections::BTreeMap<String, usize> = Default::default();
    let mut current = None;
    for line in printed.lines() {
        if let Some(heading) = line.strip_prefix("# ") {
            let id = heading.rsplit_once('(').map(|(_, id)| id.trim_end_matches(')').to_string()).unwrap();
            rows.insert(id.clone(), 0);
            current = Some((id, true));
        } else if let Some((id, header)) = current.as_mut() {
            if *header {
                *header = false;
            } else {
                *rows.get_mut(id.as_str()).unwrap() += 1;
            }
        }
    }
    assert_eq!(rows.len(), templates::QUERIES.len(), "{printed}");

    let url = format!("file://{}", report.display());
    let dom = headless(&browser, &["--dump-dom", &url]);
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8(dom.stdout).unwrap();
    let charts: Vec<&str> = dom.split("<svg ").skip(1).collect();
    assert_eq!(charts.len(), templates::QUERIES.len(), "one chart per question");
    for q in templates::QUERIES {
        let chart =
            charts.iter().find(|c| c.starts_with(&format!("id=\"chart-{}\"", q.id))).unwrap_or_else(|| panic!("no chart for {}", q.id));
        let chart = chart.split("</svg>").next().unwrap();
        let bars = chart.matches("class=\"bar\"").count();
        assert_eq!(bars, rows[q.id].min(40), "{}: a bar per row", q.id);
        assert!(bars > 0, "{}: bars drawn", q.id);
    }
    assert!(!dom.contains("src=\"http") && !dom.contains("href=\"http"), "the page fetches nothing");

    let png = dir.path().join("report.png");
    let shot = headless(&browser, &[&format!("--screenshot={}", png.display()), "--window-size=1000,4000", &url]);
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000, "a screenshot with something on it: {} bytes", bytes.len());
}
