//! The HTML evaluation report: a table and ROC / precision–recall curves drawn as inline SVG
//! with plotters (no JavaScript, no external assets).

use super::Report;
use plotters::prelude::*;
use std::fmt::Write as _;

const COLOURS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(148, 103, 189), RGBColor(44, 160, 44)];

/// Renders `report` as a self-contained HTML page titled with `title`.
pub fn write_html(report: &Report, title: &str) -> anyhow::Result<String> {
    let roc = chart("ROC curve", "false positive rate", "true positive rate", report, |m| &m.roc_curve, true)?;
    let pr = chart("Precision–recall curve", "recall", "precision", report, |m| &m.pr_curve, false)?;
    let mut rows = String::new();
    for m in &report.models {
        let _ = write!(rows, "<tr><td>{}</td>", escape(&m.model));
        for cell in m.cells() {
            let _ = write!(rows, "<td>{cell}</td>");
        }
        rows.push_str("</tr>");
    }
    let mut scenarios = String::new();
    if let Some(first) = report.scenarios.first() {
        scenarios.push_str("<h2>Per fraud scenario</h2><p>ROC AUC against genuine transactions / recall at the block threshold.</p><table><thead><tr><th>scenario</th><th>frauds</th>");
        for m in &first.models {
            let _ = write!(scenarios, "<th>{}</th>", escape(&m.model));
        }
        scenarios.push_str("</tr></thead><tbody>");
        for s in &report.scenarios {
            let _ = write!(scenarios, "<tr><td>{}</td><td>{}</td>", escape(&s.scenario), s.frauds);
            for m in &s.models {
                let auc = m.roc_auc.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
                let _ = write!(scenarios, "<td>{auc} / {:.3}</td>", m.recall_at_block);
            }
            scenarios.push_str("</tr>");
        }
        scenarios.push_str("</tbody></table>");
    }
    Ok(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1f2933; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ padding: .35rem .8rem; border-bottom: 1px solid #d9e2ec; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
</style></head><body>
<h1>{title}</h1>
<p>{rows_n} transactions evaluated, {frauds} fraud ({rate:.2}%). Window: {from} → {to}.</p>
<table><thead><tr><th>model</th><th>ROC AUC</th><th>average precision</th><th>precision@block</th><th>recall@block</th><th>F1@block</th><th>card precision@100/day</th><th>same, new cards only</th></tr></thead>
<tbody>{rows}</tbody></table>
{scenarios}<div class="charts">{roc}{pr}</div>
</body></html>
"#,
        title = escape(title),
        rows_n = report.rows,
        frauds = report.frauds,
        rate = 100.0 * report.fraud_rate,
        from = escape(report.from.as_deref().unwrap_or("start")),
        to = escape(report.to.as_deref().unwrap_or("end")),
    ))
}

type CurveOf = fn(&super::ModelReport) -> &Vec<aegis_model::metrics::CurvePoint>;

fn chart(
    caption: &str,
    x_label: &str,
    y_label: &str,
    report: &Report,
    curve: CurveOf,
    diagonal: bool,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut c = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
            .map_err(plot_err)?;
        c.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(plot_err)?;
        if diagonal {
            c.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3))).map_err(plot_err)?;
        }
        for (m, colour) in report.models.iter().zip(COLOURS) {
            let auc = m.roc_auc.map_or(String::new(), |a| format!(" (AUC {a:.3})"));
            c.draw_series(LineSeries::new(curve(m).iter().map(|p| (p.x, p.y)), colour.stroke_width(2)))
                .map_err(plot_err)?
                .label(format!("{}{auc}", m.model))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the report chart: {e}")
}

/// Minimal HTML text escaping for values placed in the page.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
