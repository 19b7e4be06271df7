//! The run's metrics, cumulative from its start: sums and histograms keyed by their attributes,
//! as OTLP `Metric`s.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum,
    metric::Data, number_data_point,
};

/// Histogram bounds, in seconds.
const BOUNDS: &[f64] = &[
    0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Each metric's unit and description.
const DESCRIBED: &[(&str, &str, &str)] = &[
    (
        "orch.tasks",
        "{task}",
        "tasks settled, by plan and outcome (done, failed)",
    ),
    (
        "orch.retries",
        "{attempt}",
        "failed attempts that will be tried again",
    ),
    (
        "orch.attempts.lost",
        "{attempt}",
        "attempts started again without settling (a host lost, a usage limit)",
    ),
    (
        "orch.attempt.duration",
        "s",
        "an attempt's time, launch to settle, by outcome",
    ),
    (
        "orch.queue.wait",
        "s",
        "from when a task was ready to its attempt's start",
    ),
    (
        "orch.dispatch.latency",
        "s",
        "from when a retry was due to its start",
    ),
    ("orch.tokens", "{token}", "tokens by agent, model and type"),
    ("orch.cost", "USD", "cost by agent and model"),
];

type Key = (String, Vec<(String, String)>);

#[derive(Clone, Debug, Default)]
struct Hist {
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
    min: f64,
    max: f64,
}

/// The run's metrics.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) start: u64,
    pub(crate) end: u64,
    ints: BTreeMap<Key, (u64, Vec<KeyValue>)>,
    floats: BTreeMap<Key, (f64, Vec<KeyValue>)>,
    hists: BTreeMap<Key, (Hist, Vec<KeyValue>)>,
}

fn key(name: &str, attrs: &[KeyValue]) -> Key {
    let a = attrs
        .iter()
        .map(|kv| (kv.key.clone(), format!("{:?}", kv.value)))
        .collect();
    (name.to_string(), a)
}

impl Metrics {
    pub(crate) fn add(&mut self, name: &str, attrs: &[KeyValue], n: u64) {
        let e = self
            .ints
            .entry(key(name, attrs))
            .or_insert_with(|| (0, attrs.to_vec()));
        e.0 = e.0.saturating_add(n);
    }

    pub(crate) fn add_f(&mut self, name: &str, attrs: &[KeyValue], x: f64) {
        let e = self
            .floats
            .entry(key(name, attrs))
            .or_insert_with(|| (0.0, attrs.to_vec()));
        e.0 += x;
    }

    pub(crate) fn histogram(&mut self, name: &str, attrs: &[KeyValue], x: f64) {
        let e = self.hists.entry(key(name, attrs)).or_insert_with(|| {
            (
                Hist {
                    buckets: vec![0; BOUNDS.len() + 1],
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    ..Hist::default()
                },
                attrs.to_vec(),
            )
        });
        let h = &mut e.0;
        h.count += 1;
        h.sum += x;
        h.min = h.min.min(x);
        h.max = h.max.max(x);
        let b = BOUNDS.iter().position(|b| x <= *b).unwrap_or(BOUNDS.len());
        h.buckets[b] += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ints.is_empty() && self.floats.is_empty() && self.hists.is_empty()
    }

    /// The metrics as of `now` (nanoseconds), cumulative since the run's start.
    pub(crate) fn otlp(&self, now: u64) -> Vec<Metric> {
        let mut by: BTreeMap<&str, Data> = BTreeMap::new();
        let sum = || {
            Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })
        };
        let point = |attrs: &[KeyValue], v: number_data_point::Value| NumberDataPoint {
            attributes: attrs.to_vec(),
            start_time_unix_nano: self.start,
            time_unix_nano: now,
            value: Some(v),
            ..Default::default()
        };
        for ((name, _), (n, attrs)) in &self.ints {
            if let Data::Sum(s) = by.entry(name).or_insert_with(sum) {
                s.data_points.push(point(
                    attrs,
                    number_data_point::Value::AsInt(i64::try_from(*n).unwrap_or(i64::MAX)),
                ));
            }
        }
        for ((name, _), (x, attrs)) in &self.floats {
            if let Data::Sum(s) = by.entry(name).or_insert_with(sum) {
                s.data_points
                    .push(point(attrs, number_data_point::Value::AsDouble(*x)));
            }
        }
        for ((name, _), (h, attrs)) in &self.hists {
            let e = by.entry(name).or_insert_with(|| {
                Data::Histogram(Histogram {
                    data_points: Vec::new(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                })
            });
            if let Data::Histogram(hist) = e {
                hist.data_points.push(HistogramDataPoint {
                    attributes: attrs.clone(),
                    start_time_unix_nano: self.start,
                    time_unix_nano: now,
                    count: h.count,
                    sum: Some(h.sum),
                    bucket_counts: h.buckets.clone(),
                    explicit_bounds: BOUNDS.to_vec(),
                    min: Some(h.min),
                    max: Some(h.max),
                    ..Default::default()
                });
            }
        }
        by.into_iter()
            .map(|(name, data)| {
                let (unit, description) = DESCRIBED
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .map_or(("", ""), |(_, u, d)| (*u, *d));
                Metric {
                    name: name.to_string(),
                    unit: unit.to_string(),
                    description: description.to_string(),
                    data: Some(data),
                    ..Default::default()
                }
            })
            .collect()
    }
}
