//! Helpers for the apps' tests: draw at the two sizes we snapshot, answer requests.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::Value;

use app_kit::app::{App, Effect, Event, Ticket, ViewCx};
use app_kit::clock::Clock;
use app_kit::theme::Theme;

pub const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

/// The moment every test draws at: Friday 2026-05-01 12:00 UTC, a local time of UTC.
pub const NOW_MS: u64 = 1_777_636_800_000;
pub const CLOCK: Clock = Clock {
    now_ms: NOW_MS,
    utc_offset_s: 0,
};

/// The app drawn in a window of this size, as text.
pub fn draw(app: &dyn App, width: u16, height: u16, focused: bool) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    let theme = Theme::dark();
    terminal
        .draw(|frame| {
            let area = frame.area();
            app.view(
                area,
                frame.buffer_mut(),
                &ViewCx {
                    theme: &theme,
                    focused,
                    clock: CLOCK,
                },
            );
        })
        .expect("draw");
    terminal.backend().to_string()
}

/// Snapshot the app at 80x24 and 120x40 under `name`.
#[macro_export]
macro_rules! snapshot_sizes {
    ($name:expr, $app:expr) => {
        for (w, h) in $crate::testing::SIZES {
            insta::assert_snapshot!(
                format!("{}_{w}x{h}", $name),
                $crate::testing::draw($app, w, h, true)
            );
        }
    };
}

/// The requests among these effects: (ticket, topic, data).
pub fn requests(effects: &[Effect]) -> Vec<(Ticket, &'static str, Value)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Request {
                ticket,
                topic,
                data,
            } => Some((*ticket, *topic, data.clone())),
            _ => None,
        })
        .collect()
}

/// The one request on `topic` among these effects.
pub fn request_on(effects: &[Effect], topic: &str) -> (Ticket, Value) {
    let found: Vec<_> = requests(effects)
        .into_iter()
        .filter(|(_, t, _)| *t == topic)
        .collect();
    assert_eq!(found.len(), 1, "one {topic} request in {effects:?}");
    (found[0].0, found[0].2.clone())
}

/// Answer a request successfully.
pub fn answer(app: &mut dyn App, ticket: Ticket, data: Value) -> Vec<Effect> {
    app.update(Event::Answer {
        ticket,
        result: Ok(data.into()),
    })
}
