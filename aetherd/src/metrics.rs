//! Counters and latency histograms of the bus and the services, in the
//! Prometheus text format (served at `/metrics` on the gateway's TCP port).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::sync::Arc;

use crate::hub::{Hub, StatsSnapshot};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The service topic, e.g. `vfs.read`: a closed set, so the label cannot explode.
    topic: String,
    outcome: &'static str,
}

type Requests = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to ~26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// Live metrics the services record into.
pub struct Metrics {
    requests: Requests,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// What `/metrics` renders: the bus's counters and the services' latencies.
#[derive(Clone)]
pub struct MetricsPage {
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
}

impl MetricsPage {
    pub fn render(&self) -> String {
        self.metrics.render(&self.hub.snapshot())
    }
}

impl Metrics {
    /// A service answered a request on `topic` after `elapsed`.
    pub fn observe_request(&self, topic: &str, ok: bool, elapsed: Duration) {
        let labels = RequestLabels {
            topic: topic.to_owned(),
            outcome: if ok { "ok" } else { "error" },
        };
        self.requests
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Everything, as Prometheus text.
    pub fn render(&self, hub: &StatsSnapshot) -> String {
        let mut registry = Registry::with_prefix("aether");
        let counter = |value: u64| {
            let c: Counter = Counter::default();
            c.inc_by(value);
            c
        };
        let gauge = |value: i64| {
            let g: Gauge = Gauge::default();
            g.set(value);
            g
        };
        registry.register(
            "bus_published",
            "Messages published",
            counter(hub.published),
        );
        registry.register(
            "bus_delivered",
            "Deliveries queued to subscribers",
            counter(hub.delivered),
        );
        registry.register(
            "bus_dropped",
            "Deliveries not queued (receiver full or gone)",
            counter(hub.dropped),
        );
        registry.register(
            "bus_slow_consumers",
            "Connections dropped as slow consumers",
            counter(hub.slow_consumers),
        );
        registry.register("bus_requests", "Requests routed", counter(hub.requests));
        registry.register(
            "bus_no_responders",
            "Requests nobody served",
            counter(hub.no_responders),
        );
        registry.register(
            "bus_timeouts",
            "Requests that timed out",
            counter(hub.timeouts),
        );
        registry.register(
            "connections",
            "Signed-in connections",
            gauge(hub.connections as i64),
        );
        registry.register(
            "subscriptions",
            "Live subscriptions",
            gauge(hub.subscriptions as i64),
        );
        registry.register(
            "pending_requests",
            "Requests waiting for an answer",
            gauge(hub.pending_requests as i64),
        );
        registry.register(
            "service_request_seconds",
            "Time services took to answer requests, by topic and outcome",
            self.requests.clone(),
        );
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &registry) {
            tracing::error!("metrics encoding failed: {e}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let metrics = Metrics::default();
        metrics.observe_request("vfs.read", true, Duration::from_millis(3));
        let hub = StatsSnapshot {
            connections: 2,
            subscriptions: 5,
            published: 10,
            delivered: 30,
            dropped: 0,
            slow_consumers: 1,
            requests: 4,
            pending_requests: 0,
            no_responders: 1,
            timeouts: 0,
        };
        let text = metrics.render(&hub);
        assert!(text.contains("aether_bus_delivered_total 30"), "{text}");
        assert!(text.contains("aether_connections 2"), "{text}");
        assert!(
            text.contains(
                r#"aether_service_request_seconds_count{topic="vfs.read",outcome="ok"} 1"#
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
