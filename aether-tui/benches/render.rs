//! Drawing a full frame: 200x60, six windows with content, into a TestBackend.

use std::hint::black_box;

use aether_tui::desktop::{Desktop, Output, Placement};
use aether_tui::keymap::Keymap;
use app_kit::{Effect, Event, Theme};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

/// Six windows: the default three, a second explorer, a second terminal and settings;
/// the explorers hold 10,000 entries, the terminals a screenful of coloured output.
fn six_windows() -> Desktop {
    let mut desktop = Desktop::new(
        Keymap::default(),
        Theme::dark(),
        "bench".into(),
        std::time::Instant::now(),
    );
    desktop.resize(200, 60);
    desktop.default_layout();
    desktop.start();
    desktop.open_app(apps::files::APP, Placement::Auto, Some("/big"));
    desktop.open_app(apps::terminal::APP, Placement::Auto, None);
    desktop.open_app(apps::settings::APP, Placement::Auto, None);
    let entries: Vec<_> = (0..10_000)
        .map(|i| json!({ "name": format!("file-{i:05}.txt"), "kind": "file", "size": i, "modified_ms": 0 }))
        .collect();
    for output in desktop.take_outputs() {
        let Output::Bus(window, kind, effect) = output else {
            continue;
        };
        match (kind.name(), effect) {
            (
                "files",
                Effect::Request {
                    ticket,
                    topic: "vfs.list",
                    data,
                },
            ) => desktop.deliver(
                window,
                Event::Answer {
                    ticket,
                    result: Ok(json!({ "path": data["path"], "entries": entries }).into()),
                },
            ),
            ("terminal", Effect::Subscribe { ticket, .. }) => {
                // A program runs and fills the screen with coloured output.
                desktop.deliver(window, Event::Paste("run /bin/report.wasm\n".into()));
                let run = desktop.take_outputs().into_iter().find_map(|o| match o {
                    Output::Bus(
                        w,
                        _,
                        Effect::Request {
                            ticket,
                            topic: "vm.run",
                            ..
                        },
                    ) if w == window => Some(ticket),
                    _ => None,
                });
                let Some(run) = run else { continue };
                desktop.deliver(
                    window,
                    Event::Answer {
                        ticket: run,
                        result: Ok(json!({ "job": "j1", "topic": "vm.job.j1", "cached": true,
                            "limits": { "timeout_ms": 1000, "memory_mb": 64, "output_kb": 64, "files": "none" } }).into()),
                    },
                );
                for i in 0..60 {
                    desktop.deliver(
                        window,
                        Event::Delivery {
                            ticket,
                            topic: "vm.job.j1.stdout".into(),
                            data: json!({ "seq": i, "stream": "stdout", "encoding": "utf8",
                                "data": format!("\u{1b}[32mline {i}\u{1b}[0m of output, with some text to fill the row\n") }),
                        },
                    );
                }
            }
            _ => {}
        }
    }
    desktop
}

fn render(c: &mut Criterion) {
    let desktop = six_windows();
    assert_eq!(desktop.layout().len(), 6);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    c.bench_function("render/200x60_six_windows", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| desktop.render(frame.area(), frame.buffer_mut()))
                .unwrap();
            black_box(terminal.backend());
        })
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
