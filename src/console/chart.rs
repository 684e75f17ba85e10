//! Per-minute line charts drawn on the server as SVG: presentation attributes and
//! classes only (no inline style, so the CSP holds), no script.

use maud::{html, Markup};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// One line: a value per minute, oldest first; `None` where nothing was recorded.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: &'static str,
    pub values: Vec<Option<i64>>,
}

impl Series {
    fn total(&self) -> i64 {
        self.values.iter().flatten().sum()
    }

    fn peak(&self) -> i64 {
        self.values.iter().flatten().copied().max().unwrap_or(0)
    }
}

/// Returns an SVG chart of `series` (each as long as `minutes`), labelled from
/// `-24 h` to `now`. `data-total` and `data-points` (minutes above zero) say what it
/// shows without reading the drawing.
pub fn line_chart(name: &str, title: &str, series: &[Series], minutes: usize) -> Markup {
    let max = series.iter().map(Series::peak).max().unwrap_or(0).max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = plot_w / (minutes.max(2) - 1) as f64;
    let y = |v: f64| TOP + plot_h - v / max * plot_h;
    let total: i64 = series.iter().map(Series::total).sum();
    let points = series
        .iter()
        .flat_map(|s| s.values.iter())
        .filter(|v| v.is_some_and(|v| v > 0))
        .count();
    let hours = minutes as f64 / 60.0;
    html! {
        figure.chart-box {
            h2 { (title) }
            svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
                role="img" data-series=(name) data-total=(total) data-points=(points) {
                title { (title) ": " (total) " in the last " (hours) " h, at most " (max as i64) " a minute" }
                @for fraction in [0.0, 0.5, 1.0] {
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(max * fraction)) y2=(y(max * fraction)) {}
                    text.axis x=(LEFT - 6.0) y=(y(max * fraction) + 4.0) text-anchor="end" { (axis_label(max * fraction)) }
                }
                @for (fraction, label) in [(0.0, format!("-{hours} h")), (0.5, format!("-{} h", hours / 2.0)), (1.0, "now".to_owned())] {
                    text.axis x=(LEFT + plot_w * fraction) y=(HEIGHT - 6.0)
                        text-anchor=(if fraction == 0.0 { "start" } else if fraction == 1.0 { "end" } else { "middle" }) { (label) }
                }
                @for (index, s) in series.iter().enumerate() {
                    @for run in runs(&s.values) {
                        polyline class={ "series-" (index) } data-label=(s.label)
                            points=(polyline_points(&run, step, &y)) {}
                    }
                }
            }
            @if series.len() > 1 {
                p.legend {
                    @for (index, s) in series.iter().enumerate() {
                        span class={ "key-" (index) } { "— " (s.label) } " "
                    }
                }
            }
        }
    }
}

/// Splits values into runs of recorded minutes: `(minute index, value)` each.
fn runs(values: &[Option<i64>]) -> Vec<Vec<(usize, i64)>> {
    let mut runs = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => current.push((i, *v)),
            None if !current.is_empty() => runs.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Returns the `points` attribute of a run, keeping only the ends of flat stretches
/// (a quiet day is a few points, not 1,440).
fn polyline_points(run: &[(usize, i64)], step: f64, y: &dyn Fn(f64) -> f64) -> String {
    let mut out = Vec::new();
    for (k, (i, v)) in run.iter().enumerate() {
        let before = k.checked_sub(1).and_then(|p| run.get(p)).map(|p| p.1);
        let after = run.get(k + 1).map(|n| n.1);
        if before != Some(*v) || after != Some(*v) {
            out.push(format!(
                "{:.1},{:.1}",
                LEFT + *i as f64 * step,
                y(*v as f64)
            ));
        }
    }
    if out.len() == 1 {
        // A single minute: a short tick, so it is visible.
        out.push(out[0].clone());
    }
    out.join(" ")
}

fn axis_label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() != 0.0 && v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_split_lines_and_flat_stretches_collapse() {
        let values = vec![Some(0), Some(0), Some(0), Some(4), None, Some(2)];
        assert_eq!(runs(&values).len(), 2);
        let svg = line_chart(
            "depth",
            "Queue depth",
            &[Series {
                label: "pending",
                values,
            }],
            6,
        )
        .into_string();
        assert!(svg.contains(r#"data-total="6""#), "{svg}");
        assert!(svg.contains(r#"data-points="2""#), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2);
        // 0,0,0,4: the middle zero is dropped.
        let first = svg.split(" points=\"").nth(1).unwrap_or_default();
        let first = first.split('"').next().unwrap_or_default();
        assert_eq!(first.split(' ').count(), 3, "{first}");
        assert!(!svg.contains("style="));
    }

    #[test]
    fn an_empty_chart_still_draws_its_axes() {
        let svg = line_chart("none", "Nothing", &[], 1440).into_string();
        assert!(svg.contains("<svg"));
        assert!(svg.contains(r#"data-total="0""#));
    }
}
