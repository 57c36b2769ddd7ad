//! How a program window looks: its output (stderr in the error style), then one line
//! for your input while it runs, led by the prompt the program left unfinished
//! (`todo> `), as a terminal shows it; or what became of it and how to run it again.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Widget;

use super::{Program, Run};
use crate::terminal::{ansi_line, draw_scrollback};
use app_kit::app::ViewCx;
use app_kit::widgets::fit;

pub(super) fn render(program: &Program, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    let [body, prompt] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    let typing = matches!(
        program.run,
        Run::Starting
            | Run::Running {
                stdin_open: true,
                ..
            }
    );
    // While you may type, the program's unfinished line is the input line's prompt, unless it
    // would leave less than half the line for typing: then it stays in the output above.
    let half = usize::from(area.width / 2);
    let program_prompt = program
        .out
        .partial()
        .filter(|line| typing && ansi_line(&line.text).width() <= half);
    draw_scrollback(
        &program.out,
        body,
        buf,
        theme,
        theme.error(),
        program_prompt.is_none(),
    );
    let width = prompt.width as usize;
    let label: Line = match (&program.run, program_prompt) {
        (Run::Running { .. }, Some(line)) => ansi_line(&line.text),
        (Run::Starting, _) => Line::styled(format!("starting {}… ", program.name()), theme.dim()),
        (
            Run::Running {
                stdin_open: true, ..
            },
            None,
        ) => Line::styled(
            format!("{}{} ", program.name(), theme.glyph("›", ">")),
            theme.accent(),
        ),
        (Run::Running { .. }, _) => {
            Line::styled(fit("input closed; Ctrl-C stops it", width), theme.dim())
        }
        (Run::Ended { how, ok }, _) => Line::styled(
            fit(&format!("{how} — Enter runs it again"), width),
            if *ok { theme.info() } else { theme.warn() },
        ),
        (Run::Failed(_), _) => Line::styled(
            fit("could not run — Enter tries again", width),
            theme.error(),
        ),
    };
    if !typing {
        label.render(prompt, buf);
        return;
    }
    // A long prompt leaves at least half the line for typing.
    let label_width = (label.width() as u16).min(prompt.width / 2);
    label.render(Rect::new(prompt.x, prompt.y, label_width, 1), buf);
    let rest = Rect::new(
        prompt.x + label_width,
        prompt.y,
        prompt.width.saturating_sub(label_width),
        1,
    );
    program
        .input
        .render(rest, buf, theme.base(), theme.cursor(), cx.focused);
}
