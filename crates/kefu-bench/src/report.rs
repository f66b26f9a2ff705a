//! Latency histograms and how a run is printed: one JSON line, or lines for a person.

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// A latency histogram in microseconds, up to 10 minutes at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_max(600_000_000, 3).expect("valid histogram bounds")
}

pub fn quantiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": h.value_at_quantile(0.5),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "max": h.max(),
    })
}

/// Every recorded value of a histogram as `[[µs, count], …]` (each value the highest of its
/// bucket, as quantiles report it): histograms of several processes merge exactly from these.
pub fn recorded(h: &Histogram<u64>) -> Value {
    h.iter_recorded()
        .map(|v| {
            json!([
                h.highest_equivalent(v.value_iterated_to()),
                v.count_at_value()
            ])
        })
        .collect()
}

/// `name  µs  p50 … p99 … p99.9 … max …`
pub fn latency_line(name: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("  {name:<16} (none)");
    }
    format!(
        "  {name:<16} p50 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}",
        duration(h.value_at_quantile(0.5)),
        duration(h.value_at_quantile(0.99)),
        duration(h.value_at_quantile(0.999)),
        duration(h.max()),
    )
}

/// Microseconds for a person: `850 µs`, `12.3 ms`, `4.56 s`.
pub fn duration(micros: u64) -> String {
    match micros {
        0..1_000 => format!("{micros} µs"),
        1_000..1_000_000 => format!("{:.1} ms", micros as f64 / 1e3),
        _ => format!("{:.2} s", micros as f64 / 1e6),
    }
}

pub fn bytes(value: Option<u64>) -> String {
    match value {
        None => "n/a".to_owned(),
        Some(b) if b >= 10 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        Some(b) if b >= 10 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        Some(b) => format!("{b} B"),
    }
}

/// The growth of `after` over `before`, spread over `count` (bytes per connection).
pub fn per(before: Option<u64>, after: Option<u64>, count: usize) -> Option<f64> {
    let (before, after) = (before?, after?);
    (count > 0).then(|| (after as f64 - before as f64) / count as f64)
}
