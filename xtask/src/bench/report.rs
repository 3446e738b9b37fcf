//! The bench's report: a table for the terminal, `target/bench/report.md`, and two SVG charts
//! (validate against pgbench, list depth against OFFSET) drawn with plotters.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::billed::{self, Implementation, Request};
use super::stats::ms;
use super::{Sizes, cold, list, noop_deploy, validate};

pub struct Report {
    pub sizes: Sizes,
    pub validate: Vec<validate::Level>,
    pub list: Vec<list::Row>,
    pub cold: Vec<cold::Row>,
    pub noop: noop_deploy::NoOp,
    pub billed: billed::Billed,
}

fn micros(d: std::time::Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn mark(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

impl Report {
    /// The results as Markdown tables (readable as plain text too), with the goals checked.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let s = &self.sizes;
        let _ = writeln!(
            t,
            "\n## validate: full handler path vs `pgbench -S` ({} codes, {} s per level)\n",
            s.codes, s.seconds
        );
        let _ = writeln!(
            t,
            "| instances = connections | validate req/s | p50 ms | p99 ms | 401 floor req/s | floor p50 ms | pgbench -S tps | p50 ms | p99 ms | ratio |"
        );
        let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for l in &self.validate {
            let _ = writeln!(
                t,
                "| {} | {:.0} | {} | {} | {:.0} | {} | {:.0} | {} | {} | {:.0}% |",
                l.concurrency,
                l.rps,
                ms(l.latencies.p50()),
                ms(l.latencies.p99()),
                l.floor_rps,
                ms(l.floor.p50()),
                l.pgbench_tps,
                ms(l.pgbench.p50()),
                ms(l.pgbench.p99()),
                100.0 * l.rps / l.pgbench_tps.max(1.0)
            );
        }
        let _ = writeln!(
            t,
            "\n## list: a page of {} by keyset (list handler) vs the same page by OFFSET (SQL only), {} codes\n",
            super::PAGE,
            s.codes
        );
        let _ = writeln!(t, "| sort | page depth | keyset p50 ms | keyset p99 ms | OFFSET p50 ms | OFFSET p99 ms |");
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
        for r in &self.list {
            let _ = writeln!(
                t,
                "| `{}` | {} | {} | {} | {} | {} |",
                r.sort,
                r.depth,
                ms(r.keyset.p50()),
                ms(r.keyset.p99()),
                ms(r.offset.p50()),
                ms(r.offset.p99())
            );
        }
        let _ = writeln!(t, "\n## cold start of the release bootstraps (p50 of {} starts each)\n", s.cold_reps);
        let _ = writeln!(t, "| function | zip MB | init ms | first response, no db ms | first response, with db ms |");
        let _ = writeln!(t, "|---|---:|---:|---:|---:|");
        for c in &self.cold {
            let _ = writeln!(
                t,
                "| {} | {:.2} | {} | {} | {} |",
                c.function,
                c.zip_bytes as f64 / 1_000_000.0,
                ms(c.init.p50()),
                c.first_without_db.as_ref().map(|l| ms(l.p50())).unwrap_or_else(|| "-".into()),
                ms(c.first_with_db.p50())
            );
        }
        let n = &self.noop;
        let _ = writeln!(t, "\n## deployer against the emulator\n");
        let _ = writeln!(
            t,
            "first deploy {:.2} s; no-op deploy p50 {} ms (max {} ms of {}), {} AWS calls, {} writes\n",
            n.first.as_secs_f64(),
            ms(n.wall.p50()),
            ms(n.wall.percentile(100.0)),
            n.wall.len(),
            n.calls,
            n.writes
        );
        t.push_str(&self.billed_tables());
        t.push_str(&self.goals());
        t
    }

    fn billed_tables(&self) -> String {
        let mut t = String::new();
        let b = &self.billed;
        let _ = writeln!(
            t,
            "\n## what Lambda bills: CPU time per warm request (user + system of the function process, sequential requests)\n"
        );
        let _ = writeln!(t, "| function | request | requests | CPU µs per request | p50 ms | p99 ms |");
        let _ = writeln!(t, "|---|---|---:|---:|---:|---:|");
        for r in &b.cpu {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} |",
                r.implementation.name(),
                r.request.name(),
                r.requests,
                micros(r.cpu_per_request),
                ms(r.latencies.p50()),
                ms(r.latencies.p99())
            );
        }
        let _ = writeln!(
            t,
            "\n## validate at Lambda's CPU shares (a new token each request, sequential, one instance in a cgroup with a CFS quota, period {} ms)\n",
            super::cpu::PERIOD_US / 1000
        );
        if let Some(why) = &b.shares_skipped {
            let _ = writeln!(t, "Skipped: {why}.\n");
        }
        let _ = writeln!(t, "| memory MB | share of a vCPU | function | req/s | p50 ms | p99 ms |");
        let _ = writeln!(t, "|---:|---:|---|---:|---:|---:|");
        for r in &b.shares {
            let _ = writeln!(
                t,
                "| {} | {:.1}% | {} | {:.0} | {} | {} |",
                r.memory_mb,
                r.fraction * 100.0,
                r.implementation.name(),
                r.rps,
                ms(r.latencies.p50()),
                ms(r.latencies.p99())
            );
        }
        let _ = writeln!(
            t,
            "\n## cold start of validate: exec to first poll (init) and to the first answer (JWKS fetched, database connected), p50 of {}\n",
            self.sizes.cold_reps
        );
        let _ = writeln!(t, "| function | init ms | first response ms |");
        let _ = writeln!(t, "|---|---:|---:|");
        for c in &b.cold {
            let _ =
                writeln!(t, "| {} | {} | {} |", c.implementation.name(), ms(c.init.p50()), ms(c.first_response.p50()));
        }
        t.push('\n');
        t
    }

    fn cpu_of(&self, implementation: Implementation, request: Request) -> Option<std::time::Duration> {
        self.billed
            .cpu
            .iter()
            .find(|r| r.implementation == implementation && r.request == request)
            .map(|r| r.cpu_per_request)
    }

    fn share(&self, implementation: Implementation, memory_mb: u64) -> Option<&billed::ShareRow> {
        self.billed.shares.iter().find(|r| r.implementation == implementation && r.memory_mb == memory_mb)
    }

    fn billed_goals(&self) -> String {
        let mut t = String::new();
        let us = |d: Option<std::time::Duration>| d.map(micros).unwrap_or_else(|| "-".into());
        let cached = self.cpu_of(Implementation::Ours, Request::ValidateOneToken);
        let uncached = self.cpu_of(Implementation::Ours, Request::ValidateNewToken);
        let under = |d: Option<std::time::Duration>, limit_us: f64| d.is_some_and(|d| d.as_secs_f64() * 1e6 < limit_us);
        let _ = writeln!(
            t,
            "- validate CPU per warm request under 100 µs with a cached token: {} ({} µs)",
            mark(under(cached, 100.0)),
            us(cached)
        );
        let _ = writeln!(
            t,
            "- validate CPU per warm request under 150 µs with a new token: {} ({} µs)",
            mark(under(uncached, 150.0)),
            us(uncached)
        );
        for (memory_mb, limit_ms) in [(128, 10.0), (512, 3.0)] {
            match self.share(Implementation::Ours, memory_mb) {
                Some(row) => {
                    let p99 = row.latencies.p99().as_secs_f64() * 1000.0;
                    let _ = writeln!(
                        t,
                        "- validate p99 at the {memory_mb} MB share under {limit_ms} ms: {} ({} ms)",
                        mark(p99 < limit_ms),
                        ms(row.latencies.p99())
                    );
                }
                None => {
                    let _ = writeln!(
                        t,
                        "- validate p99 at the {memory_mb} MB share under {limit_ms} ms: not measured (CPU shares skipped)"
                    );
                }
            }
        }
        let node = self.cpu_of(Implementation::NodePeer, Request::ValidateNewToken);
        let ratio = uncached.zip(node).map(|(ours, node)| node.as_secs_f64() / ours.as_secs_f64().max(1e-9));
        let _ = writeln!(
            t,
            "- at least 3x less CPU per validate than the Node.js peer (a new token each, no credit for our cache): {} ({})",
            mark(ratio.is_some_and(|r| r >= 3.0)),
            ratio.map(|r| format!("{r:.1}x")).unwrap_or_else(|| "-".into())
        );
        let first = |implementation| {
            self.billed.cold.iter().find(|c| c.implementation == implementation).map(|c| c.first_response.p50())
        };
        let cold_ratio = first(Implementation::Ours)
            .zip(first(Implementation::NodePeer))
            .map(|(ours, node)| node.as_secs_f64() / ours.as_secs_f64().max(1e-9));
        let _ = writeln!(
            t,
            "- a cold start at least 10x faster than the Node.js peer's: {} ({})",
            mark(cold_ratio.is_some_and(|r| r >= 10.0)),
            cold_ratio.map(|r| format!("{r:.1}x")).unwrap_or_else(|| "-".into())
        );
        t
    }

    fn goals(&self) -> String {
        let mut t = String::from("## goals\n\n");
        let worst_ratio = self.validate.iter().map(|l| l.rps / l.pgbench_tps.max(1.0)).fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            t,
            "- validate >= 50% of pgbench -S at every level: {} (lowest {:.0}%)",
            mark(worst_ratio >= 0.5),
            worst_ratio * 100.0
        );
        let worst_p99 = self.list.iter().map(|r| r.keyset.p99()).max().unwrap_or_default();
        let _ = writeln!(
            t,
            "- list p99 under 10 ms at every depth: {} (worst {} ms)",
            mark(worst_p99.as_millis() < 10),
            ms(worst_p99)
        );
        let flat = self.list.chunks(self.sizes.depths.len()).all(|rows| {
            let first = rows.first().map(|r| r.keyset.p50()).unwrap_or_default();
            rows.iter().all(|r| r.keyset.p50() <= first * 2 + std::time::Duration::from_micros(200))
        });
        let _ = writeln!(t, "- list flat with depth (deepest p50 within 2x of the first page's): {}", mark(flat));
        let worst_init = self.cold.iter().map(|c| c.init.p50()).max().unwrap_or_default();
        let _ =
            writeln!(t, "- init under 20 ms: {} (slowest {} ms)", mark(worst_init.as_millis() < 20), ms(worst_init));
        let biggest = self.cold.iter().map(|c| c.zip_bytes).max().unwrap_or_default();
        let _ = writeln!(
            t,
            "- zips under 5 MB: {} (largest {:.2} MB)",
            mark(biggest < 5_000_000),
            biggest as f64 / 1_000_000.0
        );
        t.push_str(&self.billed_goals());
        let n = &self.noop;
        let _ = writeln!(
            t,
            "- no-op deploy under 2 s with zero writes: {} ({} ms, {} writes)",
            mark(n.wall.percentile(100.0).as_secs_f64() < 2.0 && n.writes == 0),
            ms(n.wall.p50()),
            n.writes
        );
        t
    }

    /// Writes report.md and its charts into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        self.validate_chart(&dir.join("validate.svg"))?;
        self.list_chart(&dir.join("list.svg"))?;
        let mut md = String::from("# promo-codes benchmark\n\n");
        let _ = writeln!(
            md,
            "Command: `cargo xtask bench{}`. {}\n",
            if self.sizes.quick { " --quick" } else { "" },
            machine()
        );
        if self.sizes.quick {
            md.push_str("**Quick run: tiny sizes, the numbers mean nothing.**\n\n");
        }
        md.push_str("Every figure comes from this run, on this machine; the validate and list servers, the\n");
        md.push_str("client and pgbench share its cores, so the machine's limit is pgbench's column.\n\n");
        md.push_str("![validate vs pgbench](validate.svg)\n\n![list p99 by depth](list.svg)\n");
        md.push_str(&self.table());
        std::fs::write(dir.join("report.md"), md)?;
        Ok(())
    }

    fn validate_chart(&self, path: &Path) -> anyhow::Result<()> {
        let levels: Vec<String> = self.validate.iter().map(|l| format!("{} connections", l.concurrency)).collect();
        let series = [
            ("validate function", self.validate.iter().map(|l| l.rps).collect::<Vec<_>>(), BLUE),
            ("runtime loop alone (401 floor)", self.validate.iter().map(|l| l.floor_rps).collect(), GREEN),
            ("pgbench -S", self.validate.iter().map(|l| l.pgbench_tps).collect(), RED),
        ];
        line_chart(
            path,
            "validate: requests/s vs pgbench -S (same server, same connections, log scale)",
            &levels,
            "per second",
            &series,
        )
    }

    fn list_chart(&self, path: &Path) -> anyhow::Result<()> {
        let depths = &self.sizes.depths;
        let worst = |depth: u64, pick: &dyn Fn(&list::Row) -> std::time::Duration| {
            self.list.iter().filter(|r| r.depth == depth).map(pick).max().unwrap_or_default().as_secs_f64() * 1000.0
        };
        let pages: Vec<String> = depths.iter().map(|d| format!("page {d}")).collect();
        let series = [
            ("keyset (list handler)", depths.iter().map(|&d| worst(d, &|r| r.keyset.p99())).collect::<Vec<_>>(), BLUE),
            ("OFFSET (SQL only)", depths.iter().map(|&d| worst(d, &|r| r.offset.p99())).collect(), RED),
        ];
        line_chart(
            path,
            "list: p99 of a page by depth, worst sort (keyset vs OFFSET, log scale)",
            &pages,
            "p99 ms",
            &series,
        )
    }
}

/// An SVG chart of lines over labelled points, on a log scale that fits every value.
fn line_chart(
    path: &Path,
    caption: &str,
    x_labels: &[String],
    y_desc: &str,
    series: &[(&str, Vec<f64>, RGBColor)],
) -> anyhow::Result<()> {
    let values = || series.iter().flat_map(|(_, v, _)| v.iter().copied());
    let top = values().fold(1.0, f64::max) * 2.0;
    let bottom = values().fold(f64::INFINITY, f64::min).clamp(0.01, top) / 2.0;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..(x_labels.len() as f64 - 0.5).max(0.5), (bottom..top).log_scale())
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_labels(x_labels.len())
        .x_label_formatter(&|x| x_labels.get(x.round() as usize).cloned().unwrap_or_default())
        .y_desc(y_desc)
        .draw()
        .map_err(chart_error)?;
    for (name, values, color) in series {
        let color = *color;
        let points: Vec<(f64, f64)> = values.iter().enumerate().map(|(i, v)| (i as f64, *v)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(chart_error)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled()))).map_err(chart_error)?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(chart_error)?;
    root.present().map_err(chart_error)?;
    Ok(())
}

fn chart_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

/// The machine the numbers come from.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let postgres = ephemeral_pg::find_binaries()
        .ok()
        .and_then(|b| std::process::Command::new(b.postgres).arg("--version").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("Machine: {cores} cores ({cpu}), {postgres}, {}.", chrono::Utc::now().format("%Y-%m-%d"))
}
