//! Results: figures beside their same-run baselines, the JSON file, and the
//! markdown table printed (and optionally appended to docs/benchmarks.md).

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Latencies are recorded in microseconds, up to ten minutes.
pub type Latency = Histogram<u64>;

/// A new latency histogram (3 significant digits).
#[allow(clippy::expect_used)]
pub fn latency() -> Latency {
    // The bounds are constants hdrhistogram accepts; this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records `micros` into `h`, saturating at the histogram's bound.
pub fn record(h: &mut Latency, micros: u64) {
    h.saturating_record(micros.max(1));
}

/// The machine a result was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub mem_total_kib: u64,
    pub kernel: String,
    pub cpu_model: String,
    /// Load average over the last minute when the run started: a noisy
    /// machine (others compiling) shows here.
    pub loadavg_1m: f64,
}

impl Machine {
    pub fn probe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let mem_total_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total_kib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpu_model,
            loadavg_1m: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
        }
    }
}

/// One measured figure, with its baseline when the scenario has one.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    pub value: f64,
    pub baseline_name: Option<String>,
    pub baseline: Option<f64>,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    /// The DESIGN.md target this figure answers, if any.
    pub target: Option<String>,
}

impl Figure {
    pub fn new(name: &str, unit: &str, value: f64) -> Figure {
        Figure {
            name: name.into(),
            unit: unit.into(),
            value,
            baseline_name: None,
            baseline: None,
            ratio: None,
            target: None,
        }
    }

    /// Sets the baseline (if measured) and the ratio.
    pub fn vs(mut self, baseline_name: &str, baseline: Option<f64>) -> Figure {
        if let Some(b) = baseline {
            self.baseline_name = Some(baseline_name.into());
            self.baseline = Some(b);
            self.ratio = (b != 0.0).then(|| self.value / b);
        }
        self
    }

    pub fn target(mut self, target: &str) -> Figure {
        self.target = Some(target.into());
        self
    }
}

/// A correctness check of the run (counts, order, exactly-once).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// The result of one scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    /// The command line that produced it.
    pub command: String,
    pub started_at_unix_ms: i64,
    pub machine: Machine,
    pub params: serde_json::Value,
    pub figures: Vec<Figure>,
    pub counts: BTreeMap<String, u64>,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
    /// Every check passed.
    pub ok: bool,
    #[serde(skip)]
    pub json_path: Option<PathBuf>,
    #[serde(skip)]
    pub append_md: Option<PathBuf>,
}

impl Report {
    pub fn new(scenario: &str, common: &crate::Common, params: &impl Serialize) -> Report {
        Report {
            scenario: scenario.into(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            started_at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            machine: Machine::probe(),
            params: serde_json::to_value(params).unwrap_or_default(),
            figures: Vec::new(),
            counts: BTreeMap::new(),
            checks: Vec::new(),
            notes: Vec::new(),
            ok: true,
            json_path: common.json.clone(),
            append_md: common.append_md.clone(),
        }
    }

    pub fn figure(&mut self, f: Figure) {
        self.figures.push(f);
    }

    pub fn count(&mut self, name: &str, n: u64) {
        self.counts.insert(name.into(), n);
    }

    pub fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.ok &= ok;
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// p50 / p99 / p99.9 / max of `hark` (and `base`, the baseline) in milliseconds.
    pub fn latencies(
        &mut self,
        what: &str,
        hark: &Latency,
        base: Option<&Latency>,
        base_name: &str,
    ) {
        let quantiles = [("p50", 0.50), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)];
        for (label, q) in quantiles {
            let ms = |h: &Latency| h.value_at_quantile(q) as f64 / 1000.0;
            let base = base.filter(|b| !b.is_empty()).map(ms);
            self.figure(
                Figure::new(&format!("{what} {label}"), "ms", ms(hark)).vs(base_name, base),
            );
        }
    }

    /// The result as a markdown section.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut s = format!(
            "### {} ({})\n\n`{}`\n\nMachine: {} cores ({}), {} MiB, kernel {}, load {:.2} at start.\n\n",
            self.scenario,
            if self.ok { "all checks passed" } else { "CHECKS FAILED" },
            self.command,
            m.nproc,
            m.cpu_model,
            m.mem_total_kib / 1024,
            m.kernel,
            m.loadavg_1m
        );
        s.push_str(
            "| figure | Hark | baseline | Hark / baseline | target |\n|---|---:|---:|---:|---|\n",
        );
        for f in &self.figures {
            let base = match (&f.baseline_name, f.baseline) {
                (Some(n), Some(b)) => format!("{} ({n})", fmt_num(b)),
                _ => "—".into(),
            };
            let ratio = f.ratio.map_or("—".into(), |r| format!("{r:.3}"));
            s.push_str(&format!(
                "| {} | {} {} | {} | {} | {} |\n",
                f.name,
                fmt_num(f.value),
                f.unit,
                base,
                ratio,
                f.target.as_deref().unwrap_or("")
            ));
        }
        if !self.counts.is_empty() {
            let counts: Vec<String> = self
                .counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!("\nCounts: {}.\n", counts.join(", ")));
        }
        for c in &self.checks {
            s.push_str(&format!(
                "\n- check {}: {} ({})",
                c.name,
                if c.ok { "ok" } else { "FAILED" },
                c.detail
            ));
        }
        s.push('\n');
        for n in &self.notes {
            s.push_str(&format!("\n{n}\n"));
        }
        s
    }
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Writes the JSON, prints the table, appends it when asked; fails when a check failed.
pub fn finish(report: Report) -> anyhow::Result<()> {
    let path = report
        .json_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/bench/{}.json", report.scenario)));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let md = report.markdown();
    println!("{md}");
    println!("JSON result: {}", path.display());
    if let Some(doc) = &report.append_md {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(doc)
            .with_context(|| format!("opening {}", doc.display()))?;
        writeln!(f, "\n{md}")?;
    }
    anyhow::ensure!(report.ok, "some checks failed; see the table above");
    Ok(())
}
