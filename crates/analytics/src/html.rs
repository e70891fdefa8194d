//! A self-contained HTML page of a [`Report`]: no scripts, no external files, charts drawn as inline
//! SVG (cohort heat map, retention curves, frequency histogram against the model, tracking curve,
//! CLV distribution, RFM grid) and tables (models, holdout check, churn, at-risk customers).

use std::fmt::Write;

use crate::log::day_number;
use crate::report::Report;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 60.0;
const MARGIN_BOTTOM: f64 = 40.0;
const MARGIN_TOP: f64 = 20.0;
const MARGIN_RIGHT: f64 = 20.0;
const COLORS: [&str; 6] = ["#0f766e", "#c2410c", "#1d4ed8", "#a21caf", "#4d7c0f", "#b45309"];

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn money(minor: f64) -> String {
    let major = minor / 100.0;
    let whole = major.trunc().abs() as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let cents = ((major.abs() - whole as f64) * 100.0).round() as u64 % 100;
    format!("{}{grouped}.{cents:02}", if major < 0.0 { "-" } else { "" })
}

fn percent(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

fn nice_max(value: f64) -> f64 {
    if value.is_nan() || value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if value <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn axes(svg: &mut String, x_max: f64, y_max: f64, x_label: &str, y_label: &str, y_format: &dyn Fn(f64) -> String) {
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    for i in 0..=4 {
        let y = MARGIN_TOP + plot_h * (1.0 - i as f64 / 4.0);
        let _ = write!(
            svg,
            r##"<line x1="{MARGIN_LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            MARGIN_LEFT + plot_w,
            MARGIN_LEFT - 6.0,
            y + 4.0,
            escape(&y_format(y_max * i as f64 / 4.0))
        );
    }
    for i in 0..=5 {
        let x = MARGIN_LEFT + plot_w * i as f64 / 5.0;
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
            HEIGHT - MARGIN_BOTTOM + 16.0,
            format_number(x_max * i as f64 / 5.0)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="label">{}</text><text x="14" y="{:.1}" text-anchor="middle" class="label" transform="rotate(-90 14 {:.1})">{}</text>"#,
        MARGIN_LEFT + plot_w / 2.0,
        HEIGHT - 4.0,
        escape(x_label),
        MARGIN_TOP + plot_h / 2.0,
        MARGIN_TOP + plot_h / 2.0,
        escape(y_label)
    );
}

fn format_number(value: f64) -> String {
    if value.abs() >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value.abs() >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

struct Series<'a> {
    name: String,
    points: &'a [(f64, f64)],
    dashed: bool,
}

fn line_chart(
    series: &[Series<'_>],
    x_label: &str,
    y_label: &str,
    vertical: Option<(f64, &str)>,
    y_format: &dyn Fn(f64) -> String,
) -> String {
    let x_max = nice_max(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(0.0, f64::max));
    let y_max = nice_max(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max));
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let sx = |x: f64| MARGIN_LEFT + plot_w * x / x_max;
    let sy = |y: f64| MARGIN_TOP + plot_h * (1.0 - y / y_max);
    let mut svg = format!(r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img">"#);
    axes(&mut svg, x_max, y_max, x_label, y_label, y_format);
    if let Some((x, label)) = vertical {
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" y1="{MARGIN_TOP}" x2="{0:.1}" y2="{1:.1}" stroke="#6b7280" stroke-dasharray="4 3"/><text x="{2:.1}" y="{3:.1}" class="tick">{4}</text>"##,
            sx(x),
            HEIGHT - MARGIN_BOTTOM,
            sx(x) + 4.0,
            MARGIN_TOP + 12.0,
            escape(label)
        );
    }
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = s.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" {} points="{}"><title>{}</title></polyline>"#,
            if s.dashed { r#"stroke-dasharray="6 4""# } else { "" },
            points.join(" "),
            escape(&s.name)
        );
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{color}"/><text x="{:.1}" y="{:.1}" class="tick">{}</text>"#,
            MARGIN_LEFT + 10.0 + (k % 4) as f64 * 170.0,
            MARGIN_TOP + 4.0 + (k / 4) as f64 * 14.0,
            MARGIN_LEFT + 26.0 + (k % 4) as f64 * 170.0,
            MARGIN_TOP + 8.0 + (k / 4) as f64 * 14.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn bar_chart(categories: &[String], series: &[(&str, &[f64])], x_label: &str, y_label: &str) -> String {
    let y_max = nice_max(series.iter().flat_map(|s| s.1.iter().copied()).fold(0.0, f64::max));
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let mut svg = format!(r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img">"#);
    for i in 0..=4 {
        let y = MARGIN_TOP + plot_h * (1.0 - i as f64 / 4.0);
        let _ = write!(
            svg,
            r##"<line x1="{MARGIN_LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            MARGIN_LEFT + plot_w,
            MARGIN_LEFT - 6.0,
            y + 4.0,
            format_number(y_max * i as f64 / 4.0)
        );
    }
    let group = plot_w / categories.len().max(1) as f64;
    let bar = group * 0.8 / series.len().max(1) as f64;
    for (c, label) in categories.iter().enumerate() {
        for (k, (name, values)) in series.iter().enumerate() {
            let v = values.get(c).copied().unwrap_or(0.0);
            let h = plot_h * v / y_max;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {} = {}</title></rect>"#,
                MARGIN_LEFT + group * c as f64 + group * 0.1 + bar * k as f64,
                MARGIN_TOP + plot_h - h,
                bar.max(1.0),
                COLORS[k % COLORS.len()],
                escape(name),
                escape(label),
                format_number(v)
            );
        }
        if categories.len() <= 30 || c % (categories.len() / 10).max(1) == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
                MARGIN_LEFT + group * (c as f64 + 0.5),
                HEIGHT - MARGIN_BOTTOM + 16.0,
                escape(label)
            );
        }
    }
    for (k, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{MARGIN_TOP}" width="12" height="8" fill="{}"/><text x="{:.1}" y="{:.1}" class="tick">{}</text>"#,
            WIDTH - MARGIN_RIGHT - 200.0 + k as f64 * 100.0,
            COLORS[k % COLORS.len()],
            WIDTH - MARGIN_RIGHT - 184.0 + k as f64 * 100.0,
            MARGIN_TOP + 8.0,
            escape(name)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="label">{}</text><text x="14" y="{:.1}" text-anchor="middle" class="label" transform="rotate(-90 14 {:.1})">{}</text></svg>"#,
        MARGIN_LEFT + plot_w / 2.0,
        HEIGHT - 4.0,
        escape(x_label),
        MARGIN_TOP + plot_h / 2.0,
        MARGIN_TOP + plot_h / 2.0,
        escape(y_label)
    );
    svg
}

/// Teal shade for a fraction 0..1.
fn shade(fraction: f64) -> String {
    let f = fraction.clamp(0.0, 1.0).sqrt();
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    format!("rgb({},{},{})", mix(240.0, 15.0), mix(253.0, 118.0), mix(250.0, 110.0))
}

fn cohort_heat_map(report: &Report) -> String {
    let rows: Vec<_> = report.cohorts.iter().rev().take(36).rev().collect();
    let columns = rows.iter().map(|r| r.retention.len()).max().unwrap_or(0).min(37);
    let cell_w = ((WIDTH - 110.0) / columns.max(1) as f64).min(44.0);
    let cell_h = 18.0;
    let height = 30.0 + cell_h * rows.len() as f64;
    let mut svg = format!(r#"<svg viewBox="0 0 {WIDTH} {height:.0}" role="img">"#);
    for n in 0..columns {
        if columns <= 24 || n % 3 == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="14" text-anchor="middle" class="tick">{n}</text>"#,
                110.0 + cell_w * (n as f64 + 0.5)
            );
        }
    }
    for (i, row) in rows.iter().enumerate() {
        let y = 20.0 + cell_h * i as f64;
        let _ = write!(
            svg,
            r#"<text x="104" y="{:.1}" text-anchor="end" class="tick">{} ({})</text>"#,
            y + 13.0,
            escape(&row.cohort),
            row.size
        );
        // Scale retention after period 0 to the largest such cell, so the pattern shows.
        for (n, cell) in row.retention.iter().take(columns).enumerate() {
            let x = 110.0 + cell_w * n as f64;
            match cell {
                Some(v) => {
                    let fill = if n == 0 { "#0f766e".to_string() } else { shade(*v / 0.5) };
                    let _ = write!(
                        svg,
                        r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="#fff"><title>{} period {n}: {}</title></rect>"##,
                        cell_w,
                        cell_h,
                        escape(&row.cohort),
                        percent(*v)
                    );
                    if cell_w >= 30.0 && n > 0 {
                        let _ = write!(
                            svg,
                            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="cell">{:.0}</text>"#,
                            x + cell_w / 2.0,
                            y + 13.0,
                            v * 100.0
                        );
                    }
                }
                None => {
                    let _ = write!(
                        svg,
                        r##"<rect x="{x:.1}" y="{y:.1}" width="{cell_w:.1}" height="{cell_h:.1}" fill="#f9fafb" stroke="#fff"/>"##
                    );
                }
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

fn rfm_grid(report: &Report) -> String {
    let cell = 120.0;
    let size = 40.0 + cell * 5.0;
    let max = report.rfm.grid.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let mut svg =
        format!(r#"<svg viewBox="0 0 {:.0} {:.0}" role="img" style="max-width:640px">"#, size + 20.0, size + 20.0);
    for r in 0..5 {
        for f in 0..5 {
            let count = report.rfm.grid[r][f];
            let x = 40.0 + cell * f as f64;
            let y = cell * (4 - r) as f64;
            let _ = write!(
                svg,
                r##"<rect x="{x:.0}" y="{y:.0}" width="{cell:.0}" height="{cell:.0}" fill="{}" stroke="#fff" stroke-width="2"/><text x="{:.0}" y="{:.0}" text-anchor="middle" class="cell">{}</text><text x="{:.0}" y="{:.0}" text-anchor="middle" class="cellbig">{count}</text>"##,
                shade(count as f64 / max),
                x + cell / 2.0,
                y + cell / 2.0 - 8.0,
                escape(&report.rfm.map.grid[r][f].replace('_', " ")),
                x + cell / 2.0,
                y + cell / 2.0 + 14.0
            );
        }
        let _ = write!(
            svg,
            r#"<text x="24" y="{:.0}" text-anchor="middle" class="label">R{}</text>"#,
            cell * (4 - r) as f64 + cell / 2.0,
            r + 1
        );
    }
    for f in 0..5 {
        let _ = write!(
            svg,
            r#"<text x="{:.0}" y="{:.0}" text-anchor="middle" class="label">F{}</text>"#,
            40.0 + cell * (f as f64 + 0.5),
            size + 10.0,
            f + 1
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Renders the report as one self-contained HTML page.
pub fn render_html(report: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Regulars analysis as of {as_of}</title><style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f8fafc;color:#111827}}
main{{max-width:860px;margin:0 auto;padding:24px}} h1{{font-size:1.6rem;margin:0 0 4px}} h2{{font-size:1.15rem;margin:32px 0 4px}}
p.note{{color:#4b5563;margin:0 0 8px;font-size:.9rem}} section{{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px;margin-top:16px}}
.cards{{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin-top:16px}}
.card{{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px}} .card b{{display:block;font-size:1.25rem}} .card span{{color:#6b7280;font-size:.8rem}}
table{{border-collapse:collapse;width:100%;font-size:.85rem}} th,td{{text-align:right;padding:4px 6px;border-bottom:1px solid #f3f4f6}} th:first-child,td:first-child{{text-align:left}}
svg{{width:100%;height:auto}} .tick{{font-size:10px;fill:#6b7280}} .label{{font-size:11px;fill:#374151}} .cell{{font-size:10px;fill:#111827}} .cellbig{{font-size:16px;font-weight:600;fill:#111827}}
ul.diag li{{color:#92400e}}
</style></head><body><main><h1>Customer retention analysis</h1><p class="note">As of {as_of}; {customers} customers, {transactions} transactions ({records} records); first purchase {first}; time unit {unit:?}.</p>"#,
        as_of = report.as_of,
        customers = report.customers,
        transactions = report.transactions,
        records = report.records,
        first = report.first_purchase,
        unit = report.time_unit,
    );
    let shop = &report.metrics.shop;
    h.push_str(r#"<div class="cards">"#);
    let mut card = |value: String, label: &str| {
        let _ = write!(h, r#"<div class="card"><b>{}</b><span>{}</span></div>"#, escape(&value), escape(label));
    };
    card(report.customers.to_string(), "customers");
    card(money(shop.revenue as f64), "revenue");
    card(percent(shop.repeat_purchase_rate), "repeat purchase rate");
    card(money(shop.average_order_value), "average order value");
    card(format!("{:.2}", shop.purchase_frequency_per_year), "purchases per customer-year");
    if let Some(r) = shop.mean_true_retention_rate {
        card(percent(r), &format!("true retention per {:?}", report.metrics.period).to_lowercase());
    }
    if let Some(v) = shop.simple_clv {
        card(money(v), "simple CLV");
    }
    if let Some(clv) = &report.clv {
        card(money(clv.mean), &format!("mean model CLV, {} months", clv.horizon_months));
    }
    h.push_str("</div>");

    // Models.
    h.push_str(r#"<section><h2>Models</h2><p class="note">Maximum likelihood on log-parameters; standard errors from the numerical Hessian.</p><table><tr><th>model</th><th>parameters</th><th>log-likelihood</th><th>iterations</th></tr>"#);
    let mut model_row = |name: &str, params: String, ll: f64, iterations: usize, converged: bool| {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{}{}</td></tr>",
            escape(name),
            escape(&params),
            ll,
            iterations,
            if converged { "" } else { " (not converged)" }
        );
    };
    for (name, fit) in [("BG/NBD", &report.models.bg_nbd), ("MBG/NBD", &report.models.mbg_nbd)] {
        if let Some(m) = fit {
            let p = m.params;
            model_row(
                name,
                format!("r={:.3} α={:.3} a={:.3} b={:.3}", p.r, p.alpha, p.a, p.b),
                m.log_likelihood,
                m.diagnostics.iterations,
                m.diagnostics.converged,
            );
        }
    }
    if let Some(m) = &report.models.pareto_nbd {
        let p = m.params;
        model_row(
            "Pareto/NBD",
            format!("r={:.3} α={:.3} s={:.3} β={:.3}", p.r, p.alpha, p.s, p.beta),
            m.log_likelihood,
            m.diagnostics.iterations,
            m.diagnostics.converged,
        );
    }
    if let Some(m) = &report.models.gamma_gamma {
        let p = m.params;
        model_row(
            "Gamma-Gamma",
            format!("p={:.3} q={:.3} v={}", p.p, p.q, money(p.v)),
            m.log_likelihood,
            m.diagnostics.iterations,
            m.diagnostics.converged,
        );
    }
    for (name, error) in &report.models.errors {
        let _ = write!(
            h,
            r#"<tr><td>{}</td><td colspan="3" style="text-align:left;color:#92400e">{}</td></tr>"#,
            escape(name),
            escape(error)
        );
    }
    h.push_str("</table></section>");

    // Cohorts.
    let _ = write!(
        h,
        r#"<section><h2>Cohort retention</h2><p class="note">Share of each {:?} cohort (first purchase) that bought again in period N; blank cells are not observable yet.</p>{}</section>"#,
        report.cohort_period,
        cohort_heat_map(report)
    );
    let recent: Vec<_> = report.cohorts.iter().rev().take(6).collect();
    let curves: Vec<Vec<(f64, f64)>> = recent
        .iter()
        .map(|row| {
            row.retention_or_later.iter().enumerate().skip(1).filter_map(|(n, v)| v.map(|v| (n as f64, v))).collect()
        })
        .collect();
    let series: Vec<Series<'_>> = recent
        .iter()
        .zip(&curves)
        .map(|(row, points)| Series { name: row.cohort.clone(), points, dashed: false })
        .collect();
    let _ = write!(
        h,
        r#"<section><h2>Retention curves</h2><p class="note">Share of each recent cohort that bought again in period N or later.</p>{}</section>"#,
        line_chart(&series, "periods since first purchase", "share of cohort", None, &|v| percent(v))
    );

    // Frequency histogram.
    if let Some(fh) = &report.frequency_histogram {
        let _ = write!(
            h,
            r#"<section><h2>Repeat purchases: actual and BG/NBD</h2><p class="note">Customers by number of repeat purchases in the fitted period, against the model's expectation.</p>{}</section>"#,
            bar_chart(
                &fh.frequency,
                &[("actual", &fh.actual), ("BG/NBD", &fh.expected)],
                "repeat purchases",
                "customers"
            )
        );
    }

    // Tracking curve.
    if let Some(tracking) = &report.tracking {
        let start = tracking.first().map(|p| day_number(p.date)).unwrap_or(0);
        let week = |d: chrono::NaiveDate| (day_number(d) - start) as f64 / 7.0 + 1.0;
        let actual: Vec<(f64, f64)> = tracking.iter().map(|p| (week(p.date), p.actual_cumulative)).collect();
        let expected: Vec<(f64, f64)> = tracking.iter().map(|p| (week(p.date), p.expected_cumulative)).collect();
        let weekly_actual: Vec<(f64, f64)> = tracking.iter().map(|p| (week(p.date), p.actual)).collect();
        let weekly_expected: Vec<(f64, f64)> = tracking.iter().map(|p| (week(p.date), p.expected)).collect();
        let calibration = report.calibration_end.map(|d| (week(d), "calibration end"));
        let _ = write!(
            h,
            r#"<section><h2>Tracking: repeat transactions, actual and expected</h2><p class="note">Cumulative and weekly repeat transactions of the fitted customers.</p>{}{}</section>"#,
            line_chart(
                &[
                    Series { name: "actual".into(), points: &actual, dashed: false },
                    Series { name: "model".into(), points: &expected, dashed: true }
                ],
                "week",
                "cumulative repeat transactions",
                calibration,
                &format_number
            ),
            line_chart(
                &[
                    Series { name: "actual".into(), points: &weekly_actual, dashed: false },
                    Series { name: "model".into(), points: &weekly_expected, dashed: true }
                ],
                "week",
                "repeat transactions per week",
                calibration,
                &format_number
            )
        );
    }
    if let Some(check) = &report.holdout {
        let _ = write!(
            h,
            r#"<section><h2>Holdout check ({})</h2><p class="note">Transactions in the {:.1}-unit holdout period: actual {:.0}, predicted {:.1}.</p><table><tr><th>calibration frequency</th><th>customers</th><th>actual mean</th><th>predicted mean</th></tr>"#,
            escape(&check.model),
            check.duration,
            check.actual_total,
            check.predicted_total
        );
        for g in &check.by_frequency {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                escape(&g.frequency),
                g.customers,
                g.actual_mean,
                g.predicted_mean
            );
        }
        h.push_str("</table></section>");
    }

    // CLV.
    if let Some(clv) = &report.clv {
        let labels: Vec<String> = clv.histogram.iter().map(|b| money(b.from)).collect();
        let counts: Vec<f64> = clv.histogram.iter().map(|b| b.count as f64).collect();
        let _ = write!(
            h,
            r#"<section><h2>Customer lifetime value</h2><p class="note">{} model with Gamma-Gamma spend, {} months, {:.2}% monthly discount: total {}, mean {}, median {}; {} customers without a defined value. The last bar holds the top 1 %.</p>{}</section>"#,
            escape(&clv.model),
            clv.horizon_months,
            clv.monthly_discount_rate * 100.0,
            money(clv.total),
            money(clv.mean),
            money(clv.median),
            clv.customers_without_value,
            bar_chart(&labels, &[("customers", &counts)], "CLV from", "customers")
        );
    }

    // RFM.
    let _ = write!(
        h,
        r#"<section><h2>RFM segments</h2><p class="note">Customers by recency score (rows, R5 most recent) and frequency score (columns).</p>{}<table><tr><th>segment</th><th>customers</th></tr>"#,
        rfm_grid(report)
    );
    for (name, count) in &report.rfm.segments {
        let _ = write!(h, "<tr><td>{}</td><td>{count}</td></tr>", escape(&name.replace('_', " ")));
    }
    h.push_str("</table></section>");

    // At risk.
    h.push_str(r#"<section><h2>At risk</h2><p class="note">Repeat customers ordered by value at risk, (1 − P(alive)) × total spend.</p><table><tr><th>customer</th><th>segment</th><th>repeat purchases</th><th>total spend</th><th>days since last</th><th>P(alive)</th><th>value at risk</th></tr>"#);
    for c in &report.at_risk {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            escape(&c.customer.to_string()),
            escape(&c.segment.replace('_', " ")),
            c.frequency,
            money(c.total_spend as f64),
            c.days_since_last_purchase,
            c.probability_alive,
            money(c.value_at_risk)
        );
    }
    h.push_str("</table></section>");

    if let Some(churn) = &report.churn {
        let _ = write!(
            h,
            r#"<section><h2>Churn propensity</h2><p class="note">Logistic regression on standardised features; AUC on {} held-out customers {:.3}; {} baseline AUC {}.</p><table><tr><th>feature</th><th>coefficient</th></tr>"#,
            churn.held_out_customers,
            churn.auc,
            escape(churn.baseline_model.as_deref().unwrap_or("model")),
            churn.baseline_auc_expected_purchases.map(|a| format!("{a:.3}")).unwrap_or_else(|| "n/a".into())
        );
        for (name, coefficient) in churn.feature_names.iter().zip(&churn.coefficients) {
            let _ = write!(h, "<tr><td>{}</td><td>{coefficient:.3}</td></tr>", escape(name));
        }
        h.push_str("</table></section>");
    }
    if !report.diagnostics.is_empty() {
        h.push_str(r#"<section><h2>Diagnostics</h2><ul class="diag">"#);
        for d in &report.diagnostics {
            let _ = write!(h, "<li>{}</li>", escape(d));
        }
        h.push_str("</ul></section>");
    }
    h.push_str("</main></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(money(123456789.0), "1,234,567.89");
        assert_eq!(money(5.0), "0.05");
        assert_eq!(nice_max(0.73), 1.0);
        assert_eq!(nice_max(1234.0), 2000.0);
    }
}
