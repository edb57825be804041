//! Summarises the last criterion run as Markdown tables: every benchmark's
//! median with the min–max over its samples and criterion's 95% confidence
//! interval of the median, the router variants as ratios to the bare handler,
//! and the limiter as a ratio to governor's keyed DashMap limiter.
//!
//! It measures nothing; it reads `<target>/criterion/**/new/*.json`, which
//! `cargo bench` leaves behind. Run from the repository root after the benches:
//!
//! ```text
//! cargo bench -p benchmarks
//! cargo run -p benchmarks --release --bin report [-- <criterion directory>]
//! ```
//!
//! The criterion directory defaults to `$CARGO_TARGET_DIR/criterion`, or
//! `target/criterion`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Deserialize)]
struct BenchmarkInfo {
    full_id: String,
    group_id: String,
}

#[derive(Deserialize)]
struct Sample {
    iters: Vec<f64>,
    times: Vec<f64>,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

/// One benchmark's figures, in nanoseconds per iteration.
struct Figures {
    group: String,
    median: f64,
    median_low: f64,
    median_high: f64,
    sample_min: f64,
    sample_max: f64,
    written: SystemTime,
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target"))
                .join("criterion")
        });
    let mut found = BTreeMap::new();
    collect(&root, &mut found);
    if found.is_empty() {
        eprintln!(
            "no criterion results under {}; run `cargo bench -p benchmarks` first",
            root.display()
        );
        std::process::exit(1);
    }

    let oldest = found.values().map(|f| f.written).min();
    let newest = found.values().map(|f| f.written).max();
    if let (Some(oldest), Some(newest)) = (oldest, newest) {
        let span = newest.duration_since(oldest).unwrap_or_default();
        println!(
            "{} benchmarks from {}; results written over {:.0} s (a span much longer than one \
             `cargo bench` means they come from different runs).\n",
            found.len(),
            root.display(),
            span.as_secs_f64()
        );
    }

    println!("## All benchmarks (ns per iteration)\n");
    println!("| benchmark | median | 95% CI of median | min–max over samples |");
    println!("|---|---:|---:|---:|");
    for (id, f) in &found {
        println!(
            "| {id} | {} | {}–{} | {}–{} |",
            ns(f.median),
            ns(f.median_low),
            ns(f.median_high),
            ns(f.sample_min),
            ns(f.sample_max)
        );
    }

    router_table(&found);
    limiter_table(&found);
}

/// The router variants against the bare handler.
fn router_table(found: &BTreeMap<String, Figures>) {
    let Some(bare) = found.get("router/01_bare") else {
        return;
    };
    println!("\n## Router: ratio to the bare handler\n");
    println!("| variant | median ns | min–max ns | ratio to bare | overhead ns |");
    println!("|---|---:|---:|---:|---:|");
    for (id, f) in found.iter().filter(|(_, f)| f.group == "router") {
        println!(
            "| {} | {} | {}–{} | {:.3} | {:+.0} |",
            id.trim_start_matches("router/"),
            ns(f.median),
            ns(f.sample_min),
            ns(f.sample_max),
            f.median / bare.median,
            f.median - bare.median
        );
    }
    if let (Some(ours), Some(theirs)) = (
        found.get("router/02_rate_limit"),
        found.get("router/04_tower_governor"),
    ) {
        println!(
            "\nOverhead over bare (medians): #[rate_limit] {:+.1}%, tower_governor {:+.1}%.",
            (ours.median / bare.median - 1.0) * 100.0,
            (theirs.median / bare.median - 1.0) * 100.0,
        );
    }
}

/// MemoryStore against governor's keyed DashMap limiter, per key count.
fn limiter_table(found: &BTreeMap<String, Figures>) {
    let rows: Vec<(&str, &Figures, &Figures)> = ["1", "100000", "1000000"]
        .into_iter()
        .filter_map(|keys| {
            let ours = found.get(&format!("limiter_keyed/memory_store/{keys}"))?;
            let theirs = found.get(&format!("limiter_keyed/governor_dashmap/{keys}"))?;
            Some((keys, ours, theirs))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    println!("\n## Limiter: MemoryStore against governor's keyed DashMap\n");
    println!(
        "| keys | MemoryStore ns (min–max) | governor ns (min–max) | MemoryStore / governor |"
    );
    println!("|---:|---:|---:|---:|");
    for (keys, ours, theirs) in rows {
        println!(
            "| {keys} | {} ({}–{}) | {} ({}–{}) | {:.2} |",
            ns(ours.median),
            ns(ours.sample_min),
            ns(ours.sample_max),
            ns(theirs.median),
            ns(theirs.sample_min),
            ns(theirs.sample_max),
            ours.median / theirs.median
        );
    }
}

fn ns(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Finds every `new/benchmark.json` under `dir` and reads its figures.
fn collect(dir: &Path, found: &mut BTreeMap<String, Figures>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new") {
            if let Some((id, figures)) = read(&path) {
                found.insert(id, figures);
            }
        } else if path.file_name().is_some_and(|name| name != "report") {
            collect(&path, found);
        }
    }
}

fn read(dir: &Path) -> Option<(String, Figures)> {
    let load = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let info: BenchmarkInfo = serde_json::from_str(&load("benchmark.json")?).ok()?;
    let sample: Sample = serde_json::from_str(&load("sample.json")?).ok()?;
    let estimates: Estimates = serde_json::from_str(&load("estimates.json")?).ok()?;
    let written = std::fs::metadata(dir.join("sample.json"))
        .and_then(|m| m.modified())
        .ok()?;
    let mut per_iteration: Vec<f64> = sample
        .iters
        .iter()
        .zip(&sample.times)
        .map(|(iters, time)| time / iters)
        .collect();
    per_iteration.sort_by(f64::total_cmp);
    let (first, last) = (per_iteration.first()?, per_iteration.last()?);
    Some((
        info.full_id,
        Figures {
            group: info.group_id,
            median: estimates.median.point_estimate,
            median_low: estimates.median.confidence_interval.lower_bound,
            median_high: estimates.median.confidence_interval.upper_bound,
            sample_min: *first,
            sample_max: *last,
            written,
        },
    ))
}
