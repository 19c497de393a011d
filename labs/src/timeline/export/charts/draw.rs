//! Drawing the two charts on any plotters backend (PNG and SVG share this code).

use std::collections::BTreeSet;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::LabError;

use super::{chart_err, ChartData, FONT};

const FAULT: RGBColor = RGBColor(200, 30, 30);

/// Node colors: stable per node id, distinct for the first dozen nodes.
fn node_color(node: i64) -> RGBColor {
    const P: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
        RGBColor(188, 189, 34),
    ];
    P[node.rem_euclid(P.len() as i64) as usize]
}

/// Raft leaders: lanes from the top are the groups in name order; the top lane holds fault
/// labels. The x axis is stretched 12% past the end to leave room for the node legend.
pub(crate) fn leaders<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &ChartData,
    text: bool,
) -> Result<(), LabError> {
    let e = chart_err("leaders and terms");
    root.fill(&WHITE).map_err(&e)?;
    let n = d.groups.len() as i32;
    // Lane of group i: groups top-down, the fault-label lane above them all.
    let lane = |i: usize| n - 1 - i as i32;
    let mut b = ChartBuilder::on(root);
    b.margin(12);
    if text {
        b.caption("Raft leaders and terms", (FONT, 20)).x_label_area_size(40).y_label_area_size(90);
    }
    let mut chart = b.build_cartesian_2d(0f64..d.dur_s * 1.12, (0..n).into_segmented()).map_err(&e)?;
    let groups = d.groups.clone();
    let lane_name = move |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(l) if *l == n => "faults".to_string(),
        SegmentValue::CenterOf(l) if *l >= 0 && *l < n => groups[(n - 1 - l) as usize].clone(),
        _ => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_y_mesh().light_line_style(WHITE.mix(0.0));
    if text {
        mesh.x_desc("seconds since start").y_label_formatter(&lane_name);
    } else {
        // No label areas were reserved, so the mesh draws no text; only grid lines.
        mesh.disable_y_mesh();
    }
    mesh.draw().map_err(&e)?;

    fault_bands(
        &mut chart,
        d,
        SegmentValue::Exact(0),
        SegmentValue::Exact(n + 1),
        SegmentValue::CenterOf(n),
        text,
    )
    .map_err(&e)?;

    leader_bars(&mut chart, d, &lane, text).map_err(&e)?;
    if text {
        term_labels(&mut chart, d, &lane).map_err(&e)?;
        legend(&mut chart, SeriesLabelPosition::MiddleRight).map_err(&e)?;
    }
    Ok(())
}

/// The leaders chart's plane: seconds across, one segment per lane up.
type LaneChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32>,
    >,
>;

/// One bar per leadership span on its group's lane, a series (and legend entry) per node.
fn leader_bars<DB: DrawingBackend>(
    chart: &mut LaneChart<'_, DB>,
    d: &ChartData,
    lane: &impl Fn(usize) -> i32,
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let nodes: BTreeSet<i64> = d.leaders.iter().map(|s| s.node).collect();
    for node in nodes {
        let color = node_color(node);
        let rects = d.leaders.iter().filter(|s| s.node == node).filter_map(|s| {
            let l = lane(d.groups.iter().position(|g| *g == s.group)?);
            let mut r = Rectangle::new(
                [
                    (d.secs(s.start_ns), SegmentValue::Exact(l)),
                    (d.secs(s.end_ns), SegmentValue::Exact(l + 1)),
                ],
                color.mix(0.85).filled(),
            );
            r.set_margin(6, 6, 0, 1); // a hairline gap shows where one leader ends and the next begins
            Some(r)
        });
        let anno = chart.draw_series(rects)?;
        if text {
            anno.label(format!("node {node}"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        }
    }
    Ok(())
}

/// The term at the start of each leadership segment (each segment is a new term or leader).
fn term_labels<DB: DrawingBackend>(
    chart: &mut LaneChart<'_, DB>,
    d: &ChartData,
    lane: &impl Fn(usize) -> i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let style = TextStyle::from((FONT, 13)).color(&BLACK);
    let labels = d.leaders.iter().filter_map(|s| {
        let l = lane(d.groups.iter().position(|g| *g == s.group)?);
        Some(
            EmptyElement::at((d.secs(s.start_ns), SegmentValue::CenterOf(l)))
                + Text::new(format!("t{}", s.term), (3, -22), style.clone()),
        )
    });
    chart.draw_series(labels)?;
    Ok(())
}

/// Produce rate (acked sends per 100 ms, left axis) and p99 ack latency (ms, right axis).
pub(crate) fn produce<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &ChartData,
    text: bool,
) -> Result<(), LabError> {
    let e = chart_err("produce rate and latency");
    root.fill(&WHITE).map_err(&e)?;
    let max_acked = d.buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let max_lat = d.buckets.iter().filter_map(|b| b.2).fold(1.0f64, f64::max);
    // Headroom on top for the fault labels.
    let (ytop, ltop) = (max_acked * 1.25, max_lat * 1.25);
    let mut b = ChartBuilder::on(root);
    b.margin(12);
    if text {
        b.caption("Produce rate and p99 ack latency", (FONT, 20))
            .x_label_area_size(40)
            .y_label_area_size(70)
            .right_y_label_area_size(70);
    }
    let mut chart = b
        .build_cartesian_2d(0f64..d.dur_s, 0f64..ytop)
        .map_err(&e)?
        .set_secondary_coord(0f64..d.dur_s, 0f64..ltop);
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(BLACK.mix(0.05));
    if text {
        mesh.x_desc("seconds since start").y_desc("acked sends per 100 ms");
    } else {
        mesh.disable_y_mesh();
    }
    mesh.draw().map_err(&e)?;
    if text {
        chart.configure_secondary_axes().y_desc("p99 ack latency (ms)").draw().map_err(&e)?;
    }
    fault_bands(&mut chart, d, 0.0, ytop, ytop * 0.97, text).map_err(&e)?;

    let blue = RGBColor(31, 119, 180);
    let acked = LineSeries::new(d.buckets.iter().map(|b| (b.0, b.1 as f64)), blue.stroke_width(2));
    let anno = chart.draw_series(acked).map_err(&e)?;
    if text {
        anno.label("acked sends / 100 ms")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], blue.stroke_width(2)));
    }
    // Latency only where a bucket had acks: a gap in the line is an outage, not zero latency.
    let orange = RGBColor(230, 110, 0);
    for (i, run) in latency_runs(d).into_iter().enumerate() {
        let anno = chart.draw_secondary_series(LineSeries::new(run, orange.stroke_width(2))).map_err(&e)?;
        if text && i == 0 {
            anno.label("p99 ack latency (ms)")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], orange.stroke_width(2)));
        }
    }
    if text {
        legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(&e)?;
    }
    Ok(())
}

/// The p99 latency points split where a bucket had no acks: a gap in the line is an outage, not
/// zero latency. Only non-empty runs.
fn latency_runs(d: &ChartData) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for b in &d.buckets {
        match b.2 {
            Some(l) => runs.last_mut().unwrap_or_else(|| unreachable!()).push((b.0, l)),
            None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// The series legend both charts draw: one look, placed where it hides the least.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()
}

/// Shaded spans from each fault to its heal, thin lines for instant faults, and their labels
/// (staggered in three rows so neighbouring faults do not overprint) at `label_y`.
fn fault_bands<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    d: &ChartData,
    bottom: Y::ValueType,
    top: Y::ValueType,
    label_y: Y::ValueType,
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    for f in &d.faults {
        let x0 = d.secs(f.start_ns);
        match f.end_ns {
            Some(end) => {
                let r = Rectangle::new(
                    [(x0, bottom.clone()), (d.secs(end), top.clone())],
                    FAULT.mix(0.12).filled(),
                );
                chart.draw_series(std::iter::once(r))?;
            }
            None => {
                let l = PathElement::new(
                    vec![(x0, bottom.clone()), (x0, top.clone())],
                    FAULT.mix(0.8).stroke_width(2),
                );
                chart.draw_series(std::iter::once(l))?;
            }
        }
    }
    if text {
        let style = TextStyle::from((FONT, 12)).color(&FAULT);
        let labels = d.faults.iter().enumerate().map(|(i, f)| {
            let label = if f.end_ns.is_some() && !f.healed {
                format!("{} (not healed)", f.label)
            } else {
                f.label.clone()
            };
            EmptyElement::at((d.secs(f.start_ns), label_y.clone()))
                + Text::new(label, (3, -14 + 13 * (i as i32 % 3)), style.clone())
        });
        chart.draw_series(labels)?;
    }
    Ok(())
}
