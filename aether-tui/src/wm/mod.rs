//! The window manager: workspaces (tabs), each a split tree of tiled windows plus a
//! floating layer, the focused window, and zoom. It knows window ids and geometry only;
//! the apps in the windows are the desktop's.

mod tree;

use ratatui::layout::Rect;
use serde::{Deserialize, Serialize};

pub use tree::{Direction, Node, Split, WindowId, neighbour};

/// A floating window's place, in percent of the screen, so it survives a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatRect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

impl FloatRect {
    const CENTRED: FloatRect = FloatRect {
        x: 15,
        y: 15,
        width: 70,
        height: 70,
    };

    pub fn on(&self, area: Rect) -> Rect {
        let pct = |total: u16, p: u16| (total as u32 * p.min(100) as u32 / 100) as u16;
        let width = pct(area.width, self.width).max(10).min(area.width);
        let height = pct(area.height, self.height).max(4).min(area.height);
        let x = (area.x + pct(area.width, self.x)).min(area.right().saturating_sub(width));
        let y = (area.y + pct(area.height, self.y)).min(area.bottom().saturating_sub(height));
        Rect::new(x, y, width, height)
    }

    fn nudge(&mut self, dx: i16, dy: i16, dw: i16, dh: i16) {
        let step = |v: u16, d: i16, lo: i16, hi: i16| (v as i16 + d).clamp(lo, hi) as u16;
        self.width = step(self.width, dw, 10, 100);
        self.height = step(self.height, dh, 10, 100);
        self.x = step(self.x, dx, 0, 100 - self.width as i16);
        self.y = step(self.y, dy, 0, 100 - self.height as i16);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floating {
    pub id: WindowId,
    pub rect: FloatRect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub name: String,
    /// None when every window of the workspace floats.
    pub tree: Option<Node>,
    pub floating: Vec<Floating>,
    pub show_floating: bool,
    pub focus: WindowId,
    pub zoomed: bool,
}

/// Where a window is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub id: WindowId,
    pub area: Rect,
    pub floating: bool,
}

impl Workspace {
    pub fn new(name: impl Into<String>, first: WindowId) -> Workspace {
        Workspace {
            name: name.into(),
            tree: Some(Node::Window(first)),
            floating: Vec::new(),
            show_floating: true,
            focus: first,
            zoomed: false,
        }
    }

    pub fn windows(&self) -> Vec<WindowId> {
        let mut all = self.tree.as_ref().map(Node::windows).unwrap_or_default();
        all.extend(self.floating.iter().map(|f| f.id));
        all
    }

    pub fn is_floating(&self, id: WindowId) -> bool {
        self.floating.iter().any(|f| f.id == id)
    }

    /// Bottom to top: the tiled windows (or the zoomed one), then the floating layer.
    pub fn layout(&self, area: Rect) -> Vec<Placed> {
        if self.zoomed {
            return vec![Placed {
                id: self.focus,
                area,
                floating: false,
            }];
        }
        let mut placed: Vec<Placed> = self
            .tree
            .as_ref()
            .map(|t| t.layout(area))
            .unwrap_or_default()
            .into_iter()
            .map(|(id, area)| Placed {
                id,
                area,
                floating: false,
            })
            .collect();
        if self.show_floating {
            placed.extend(self.floating.iter().map(|f| Placed {
                id: f.id,
                area: f.rect.on(area),
                floating: true,
            }));
        }
        placed
    }

    /// Open `new` beside the focused window (or floating, if that is focused).
    pub fn split(&mut self, split: Split, new: WindowId) {
        self.zoomed = false;
        let tiled = self.tree.as_ref().is_some_and(|t| t.contains(self.focus));
        match (&mut self.tree, tiled) {
            (Some(tree), true) => {
                tree.split(self.focus, split, new);
            }
            (Some(tree), false) => {
                let first = tree.windows()[0];
                tree.split(first, split, new);
            }
            (None, _) => self.tree = Some(Node::Window(new)),
        }
        self.focus = new;
    }

    pub fn add_floating(&mut self, new: WindowId) {
        let offset = (self.floating.len() as u16 * 3) % 15;
        self.floating.push(Floating {
            id: new,
            rect: FloatRect {
                x: FloatRect::CENTRED.x + offset,
                y: FloatRect::CENTRED.y + offset,
                ..FloatRect::CENTRED
            },
        });
        self.show_floating = true;
        self.focus = new;
    }

    /// Take a window out of this workspace. False if it is not here.
    pub fn remove(&mut self, id: WindowId) -> bool {
        let before = self.windows().len();
        let mut beside = None;
        if let Some(i) = self.floating.iter().position(|f| f.id == id) {
            self.floating.remove(i);
        } else if let Some(tree) = &mut self.tree {
            if *tree == Node::Window(id) {
                self.tree = None;
            } else {
                beside = tree.remove(id);
            }
        }
        if self.windows().len() == before {
            return false;
        }
        if self.focus == id {
            self.zoomed = false;
            // A tiled window's neighbour, else the top floating one, else any.
            self.focus = beside
                .or_else(|| {
                    self.floating
                        .last()
                        .map(|f| f.id)
                        .filter(|_| self.show_floating)
                })
                .or_else(|| self.tree.as_ref().map(|t| t.windows()[0]))
                .or_else(|| self.floating.last().map(|f| f.id))
                .unwrap_or(id);
        }
        true
    }

    pub fn is_empty(&self) -> bool {
        self.windows().is_empty()
    }

    pub fn focus_towards(&mut self, area: Rect, direction: Direction) {
        if self.zoomed {
            return;
        }
        let placed: Vec<(WindowId, Rect)> = self
            .layout(area)
            .into_iter()
            .filter(|p| p.floating == self.is_floating(self.focus))
            .map(|p| (p.id, p.area))
            .collect();
        if let Some(next) = neighbour(&placed, self.focus, direction) {
            self.focus = next;
        }
    }

    /// Cycle focus through every visible window.
    pub fn focus_next(&mut self, forward: bool) {
        let ids: Vec<WindowId> = self
            .layout(Rect::new(0, 0, 100, 100))
            .iter()
            .map(|p| p.id)
            .collect();
        if let Some(i) = ids.iter().position(|id| *id == self.focus) {
            let n = ids.len();
            self.focus = ids[if forward {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            }];
        } else if let Some(first) = ids.first() {
            self.focus = *first;
        }
    }

    pub fn resize(&mut self, direction: Direction, delta: i16) {
        let focus = self.focus;
        if let Some(f) = self.floating.iter_mut().find(|f| f.id == focus) {
            match direction {
                Direction::Left => f.rect.nudge(0, 0, -delta, 0),
                Direction::Right => f.rect.nudge(0, 0, delta, 0),
                Direction::Up => f.rect.nudge(0, 0, 0, -delta),
                Direction::Down => f.rect.nudge(0, 0, 0, delta),
            }
        } else if let Some(tree) = &mut self.tree
            && !tree.resize(focus, direction, delta)
        {
            // Nothing on that side: move the border on the other side instead.
            let opposite = match direction {
                Direction::Left => Direction::Right,
                Direction::Right => Direction::Left,
                Direction::Up => Direction::Down,
                Direction::Down => Direction::Up,
            };
            tree.resize(focus, opposite, -delta);
        }
    }

    /// Move a floating window.
    pub fn nudge(&mut self, direction: Direction, step: i16) {
        let focus = self.focus;
        if let Some(f) = self.floating.iter_mut().find(|f| f.id == focus) {
            match direction {
                Direction::Left => f.rect.nudge(-step, 0, 0, 0),
                Direction::Right => f.rect.nudge(step, 0, 0, 0),
                Direction::Up => f.rect.nudge(0, -step, 0, 0),
                Direction::Down => f.rect.nudge(0, step, 0, 0),
            }
        }
    }

    /// Swap the focused tiled window with its neighbour in `direction`.
    pub fn swap_towards(&mut self, area: Rect, direction: Direction) {
        let Some(tree) = &self.tree else { return };
        let layout = tree.layout(area);
        if let Some(other) = neighbour(&layout, self.focus, direction)
            && let Some(tree) = &mut self.tree
        {
            tree.swap(self.focus, other);
        }
    }

    /// Float a tiled window, or tile a floating one.
    pub fn toggle_float(&mut self) {
        let id = self.focus;
        if self.is_floating(id) {
            self.floating.retain(|f| f.id != id);
            match &mut self.tree {
                Some(tree) => {
                    let first = tree.windows()[0];
                    tree.split(first, Split::Right, id);
                }
                None => self.tree = Some(Node::Window(id)),
            }
        } else if self.tree.as_ref().is_some_and(|t| t.windows().len() > 1) {
            if let Some(tree) = &mut self.tree {
                tree.remove(id);
            }
            self.add_floating(id);
        }
        self.focus = id;
    }

    /// Show or hide the floating layer; focus follows.
    pub fn toggle_floating_layer(&mut self) {
        if self.floating.is_empty() {
            return;
        }
        self.show_floating = !self.show_floating;
        if self.show_floating {
            self.focus = self.floating.last().map(|f| f.id).unwrap_or(self.focus);
        } else if self.is_floating(self.focus)
            && let Some(tree) = &self.tree
        {
            self.focus = tree.windows()[0];
        }
    }

    /// Keep only windows that exist; fix focus. None when nothing is left.
    pub fn retain(mut self, keep: &dyn Fn(WindowId) -> bool) -> Option<Workspace> {
        self.tree = self.tree.and_then(|t| t.retain(keep));
        self.floating.retain(|f| keep(f.id));
        let windows = self.windows();
        if windows.is_empty() {
            return None;
        }
        if !windows.contains(&self.focus) {
            self.focus = windows[0];
            self.zoomed = false;
        }
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floating_windows_sit_above_the_tiles_and_toggle() {
        let mut ws = Workspace::new("main", WindowId(1));
        ws.split(Split::Right, WindowId(2));
        ws.add_floating(WindowId(3));
        let area = Rect::new(0, 0, 100, 40);
        let placed = ws.layout(area);
        assert_eq!(placed.len(), 3);
        assert!(placed[2].floating && placed[2].id == WindowId(3));
        ws.toggle_floating_layer();
        assert_eq!(ws.layout(area).len(), 2);
        assert!(!ws.is_floating(ws.focus));
        ws.toggle_floating_layer();
        assert_eq!(ws.focus, WindowId(3));
        ws.toggle_float();
        assert!(!ws.is_floating(WindowId(3)));
        assert_eq!(ws.layout(area).len(), 3);
    }

    #[test]
    fn closing_a_window_focuses_its_neighbour() {
        let mut ws = Workspace::new("main", WindowId(1));
        ws.split(Split::Right, WindowId(2));
        ws.split(Split::Down, WindowId(3));
        ws.focus = WindowId(3);
        ws.zoomed = true;
        assert!(ws.remove(WindowId(3)));
        assert_eq!(ws.focus, WindowId(2), "the window above it, not the first");
        assert!(!ws.zoomed);
    }

    #[test]
    fn removing_the_focused_window_moves_focus() {
        let mut ws = Workspace::new("main", WindowId(1));
        ws.split(Split::Down, WindowId(2));
        assert_eq!(ws.focus, WindowId(2));
        assert!(ws.remove(WindowId(2)));
        assert_eq!(ws.focus, WindowId(1));
        assert!(ws.remove(WindowId(1)));
        assert!(ws.is_empty());
        assert!(!ws.remove(WindowId(9)));
    }

    #[test]
    fn zoom_shows_only_the_focused_window() {
        let mut ws = Workspace::new("main", WindowId(1));
        ws.split(Split::Right, WindowId(2));
        ws.zoomed = true;
        let placed = ws.layout(Rect::new(0, 0, 80, 24));
        assert_eq!(
            placed,
            vec![Placed {
                id: WindowId(2),
                area: Rect::new(0, 0, 80, 24),
                floating: false
            }]
        );
    }

    #[test]
    fn a_float_rect_stays_on_a_small_screen() {
        let rect = FloatRect {
            x: 90,
            y: 90,
            width: 50,
            height: 50,
        };
        let on = rect.on(Rect::new(0, 0, 20, 5));
        assert!(on.right() <= 20 && on.bottom() <= 5, "{on:?}");
    }
}
