//! Charts as inline SVG (the page loads nothing from elsewhere): a bar chart
//! of counts by day, and a progress bar.

/// Bars of `(day, count)` on an axis from day 0 to the last day given (at
/// least `min_days`, so one young bin does not fill the chart); each bar
/// carries its figures as a tooltip. `label` names the chart for screen readers.
pub fn days_bar_chart(label: &str, bars: &[(u32, u64)], colour: &str, min_days: u32) -> String {
    let Some(last_day) = bars.iter().map(|b| b.0).max() else {
        return String::new();
    };
    let last_day = last_day.max(min_days.saturating_sub(1));
    let days = last_day as f64 + 1.0;
    let highest = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1);
    let (width, height) = (640.0, 180.0);
    let bar = width / days;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{w}\" height=\"{h}\" \
         role=\"img\" aria-label=\"{label}\"><line x1=\"0\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\" stroke=\"#333\"/>",
        w = width + 60.0,
        h = height + 30.0,
    );
    for &(day, count) in bars {
        let h = count as f64 / highest as f64 * (height - 10.0);
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{h:.1}\" fill=\"{colour}\" \
             data-day=\"{day}\" data-count=\"{count}\"><title>day {day}: {count}</title></rect>",
            x = day as f64 * bar,
            y = height - h,
            bw = (bar - 1.0).max(1.0),
        ));
    }
    svg.push_str(&format!(
        "<text x=\"0\" y=\"{ty}\" font-size=\"12\">day 0</text>\
         <text x=\"{tx}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\">day {last_day}</text>\
         <text x=\"{tx2}\" y=\"12\" font-size=\"12\">{highest}</text></svg>",
        ty = height + 20.0,
        tx = width,
        tx2 = width + 4.0,
    ));
    svg
}

/// A horizontal bar filled to `fraction` (0 to 1).
pub fn progress_bar(fraction: f64) -> String {
    let fraction = fraction.clamp(0.0, 1.0);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"16\" role=\"img\" \
         aria-label=\"{pct:.1}% done\"><rect width=\"400\" height=\"16\" fill=\"#ddd\"/>\
         <rect width=\"{w:.1}\" height=\"16\" fill=\"#47a\"/></svg>",
        pct = fraction * 100.0,
        w = fraction * 400.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_day_given() {
        let svg = days_bar_chart("ages", &[(0, 3), (5, 1)], "#4a7", 31);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("data-day=\"5\" data-count=\"1\""));
        assert!(svg.contains(">day 30</text>"), "the axis spans min_days");
        assert!(days_bar_chart("none", &[], "#000", 31).is_empty());
    }
}
