//! Where input goes: a key to the top layer, else the keymap (a desktop command, or the
//! focused window); a paste likewise; the mouse to the tab bar, a border being dragged,
//! or the window under it.

use app_kit::{Event, Key, KeyCode, Level};
use ratatui::layout::Rect;

use super::{Desktop, Input, Layer, MouseInput, MouseKind, Outcome, inner, render, run::sticky};
use crate::commands::Command;
use crate::keymap::{Action, Mode};
use crate::wm::Split;

impl Desktop {
    pub fn on_input(&mut self, input: Input) {
        if !matches!(input, Input::Resize(..)) {
            self.touched();
        }
        match input {
            Input::Key(key) => self.on_key(key),
            Input::Paste(text) => match self.layers.last_mut() {
                Some(layer) => layer.on_paste(&text),
                None => {
                    if let Some(id) = self.focused() {
                        self.deliver(id, Event::Paste(text));
                    }
                }
            },
            Input::Mouse(mouse) => self.on_mouse(mouse),
            Input::Resize(width, height) => self.screen = Rect::new(0, 0, width, height),
        }
    }

    pub fn resize(&mut self, width: u16, height: u16) {
        self.screen = Rect::new(0, 0, width, height);
    }

    pub(super) fn on_key(&mut self, key: Key) {
        if let Some(layer) = self.layers.last_mut() {
            match layer.on_key(key) {
                Outcome::Stay => {}
                Outcome::Close => {
                    self.layers.pop();
                }
                Outcome::Answered(answer) => {
                    self.layers.pop();
                    self.on_answer(answer);
                }
            }
            return;
        }
        let mode = self.mode;
        match self.keymap.action(mode, key) {
            Action::EnterCommandMode => self.mode = Mode::Command,
            Action::Unlock => {
                self.mode = Mode::Normal;
                self.notify(Level::Info, "unlocked");
            }
            Action::Forward => {
                if let Some(id) = self.focused() {
                    self.deliver(id, Event::Key(key));
                }
            }
            Action::Run(command) => {
                if mode == Mode::Command && !sticky(command) {
                    self.mode = Mode::Normal;
                }
                self.run(command);
            }
            Action::Unbound => {
                self.mode = Mode::Normal;
                if key.code != KeyCode::Esc {
                    let help = self.keymap.main_key(Command::Help);
                    self.notify(
                        Level::Warn,
                        format!(
                            "{} {key} does nothing ({} {help} lists the keys)",
                            self.keymap.prefix, self.keymap.prefix
                        ),
                    );
                }
            }
        }
    }

    pub(super) fn on_mouse(&mut self, mouse: MouseInput) {
        if !self.layers.is_empty() {
            if mouse.kind == MouseKind::Down
                && matches!(self.layers.last(), Some(Layer::Hint(_) | Layer::Help(_)))
            {
                self.layers.pop();
            }
            return;
        }
        let body = self.body();
        let at = |r: Rect| {
            mouse.column >= r.x
                && mouse.column < r.right()
                && mouse.row >= r.y
                && mouse.row < r.bottom()
        };
        match mouse.kind {
            MouseKind::Down => {
                if mouse.row == 0 {
                    self.click_tab_bar(mouse.column);
                    return;
                }
                let ws = self.ws();
                if !ws.zoomed
                    && let Some(tree) = &ws.tree
                {
                    // A border wins over the window under it, unless a floating window covers it.
                    let covered = self.layout().iter().any(|p| p.floating && at(p.area));
                    if !covered
                        && let Some((_, _, path)) =
                            tree.borders(body).into_iter().find(|(r, _, _)| at(*r))
                    {
                        self.drag = Some(path);
                        return;
                    }
                }
                if let Some(placed) = self.layout().into_iter().rev().find(|p| at(p.area)) {
                    self.ws_mut().focus = placed.id;
                    let inner = inner(placed.area);
                    if at(inner) {
                        self.deliver(
                            placed.id,
                            Event::Mouse(app_kit::Mouse::Click {
                                column: mouse.column - inner.x,
                                row: mouse.row - inner.y,
                            }),
                        );
                    }
                }
            }
            MouseKind::Drag => {
                if let Some(path) = self.drag.clone() {
                    let ws = self.ws_mut();
                    if let Some(tree) = &mut ws.tree {
                        // Which coordinate matters depends on the split: try the node's own.
                        let borders = tree.borders(body);
                        if let Some((_, split, _)) = borders.iter().find(|(_, _, p)| *p == path) {
                            let position = match split {
                                Split::Right => mouse.column,
                                Split::Down => mouse.row,
                            };
                            tree.drag(&path, body, position);
                        }
                    }
                }
            }
            MouseKind::Up => self.drag = None,
            MouseKind::ScrollUp | MouseKind::ScrollDown => {
                if let Some(placed) = self.layout().into_iter().rev().find(|p| at(p.area)) {
                    let inner = inner(placed.area);
                    let (column, row) = (
                        mouse.column.saturating_sub(inner.x),
                        mouse.row.saturating_sub(inner.y),
                    );
                    let event = if mouse.kind == MouseKind::ScrollUp {
                        app_kit::Mouse::ScrollUp { column, row }
                    } else {
                        app_kit::Mouse::ScrollDown { column, row }
                    };
                    self.deliver(placed.id, Event::Mouse(event));
                }
            }
        }
    }

    pub(super) fn click_tab_bar(&mut self, column: u16) {
        let mut x = 0u16;
        for (i, ws) in self.workspaces.iter().enumerate() {
            let width = render::tab_label(i, &ws.name).chars().count() as u16;
            if column >= x && column < x + width {
                self.active = i;
                return;
            }
            x += width + 1;
        }
    }
}
