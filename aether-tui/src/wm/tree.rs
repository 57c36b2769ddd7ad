//! The split tree of one workspace: leaves are windows, inner nodes split their area
//! in two, side by side or one over the other. Closing a window gives its area to its
//! sibling; focus moves by geometry, like tmux.

use ratatui::layout::Rect;
use serde::{Deserialize, Serialize};

/// Identifies a window for as long as the desktop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Side by side: the first child on the left.
    Right,
    /// One over the other: the first child on top.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Left,
    Right,
    Up,
    Down,
}

impl Direction {
    fn split(self) -> Split {
        match self {
            Direction::Left | Direction::Right => Split::Right,
            Direction::Up | Direction::Down => Split::Down,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    Window(WindowId),
    Split {
        split: Split,
        /// The first child's share, in percent (10 to 90).
        ratio: u16,
        first: Box<Node>,
        second: Box<Node>,
    },
}

/// The smallest share a resize leaves a side.
const MIN_RATIO: u16 = 10;

impl Node {
    pub fn windows(&self) -> Vec<WindowId> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<WindowId>) {
        match self {
            Node::Window(id) => out.push(*id),
            Node::Split { first, second, .. } => {
                first.collect(out);
                second.collect(out);
            }
        }
    }

    pub fn contains(&self, id: WindowId) -> bool {
        match self {
            Node::Window(w) => *w == id,
            Node::Split { first, second, .. } => first.contains(id) || second.contains(id),
        }
    }

    /// Split `target`'s area, the new window taking the second half.
    pub fn split(&mut self, target: WindowId, split: Split, new: WindowId) -> bool {
        match self {
            Node::Window(id) if *id == target => {
                *self = Node::Split {
                    split,
                    ratio: 50,
                    first: Box::new(Node::Window(target)),
                    second: Box::new(Node::Window(new)),
                };
                true
            }
            Node::Window(_) => false,
            Node::Split { first, second, .. } => {
                first.split(target, split, new) || second.split(target, split, new)
            }
        }
    }

    /// Remove a window; its sibling takes the parent's place. Returns the window nearest
    /// the one removed (the focus goes there), or `None` when it is the last window or
    /// not here.
    pub fn remove(&mut self, target: WindowId) -> Option<WindowId> {
        let Node::Split { first, second, .. } = self else {
            return None;
        };
        if **first == Node::Window(target) {
            *self = (**second).clone();
            return self.windows().first().copied();
        }
        if **second == Node::Window(target) {
            *self = (**first).clone();
            return self.windows().last().copied();
        }
        first.remove(target).or_else(|| second.remove(target))
    }

    /// Each window's area (borders included).
    pub fn layout(&self, area: Rect) -> Vec<(WindowId, Rect)> {
        let mut out = Vec::new();
        self.layout_into(area, &mut out);
        out
    }

    fn layout_into(&self, area: Rect, out: &mut Vec<(WindowId, Rect)>) {
        match self {
            Node::Window(id) => out.push((*id, area)),
            Node::Split {
                split,
                ratio,
                first,
                second,
            } => {
                let (a, b) = divide(area, *split, *ratio);
                first.layout_into(a, out);
                second.layout_into(b, out);
            }
        }
    }

    /// The borders between split halves, for dragging with the mouse: the line's area,
    /// the split's orientation, and the path to the split node.
    pub fn borders(&self, area: Rect) -> Vec<(Rect, Split, Vec<bool>)> {
        let mut out = Vec::new();
        self.borders_into(area, &mut Vec::new(), &mut out);
        out
    }

    fn borders_into(
        &self,
        area: Rect,
        path: &mut Vec<bool>,
        out: &mut Vec<(Rect, Split, Vec<bool>)>,
    ) {
        let Node::Split {
            split,
            ratio,
            first,
            second,
        } = self
        else {
            return;
        };
        let (a, b) = divide(area, *split, *ratio);
        // The border is the first half's last column or row (each window draws its own frame).
        let line = match split {
            Split::Right => Rect::new(
                a.right().saturating_sub(1),
                a.y,
                2.min(b.width + 1),
                a.height,
            ),
            Split::Down => Rect::new(
                a.x,
                a.bottom().saturating_sub(1),
                a.width,
                2.min(b.height + 1),
            ),
        };
        out.push((line, *split, path.clone()));
        path.push(false);
        first.borders_into(a, path, out);
        path.pop();
        path.push(true);
        second.borders_into(b, path, out);
        path.pop();
    }

    /// Set the ratio of the split at `path` so its border falls at `at` (a column or a row).
    pub fn drag(&mut self, path: &[bool], area: Rect, at: u16) {
        match self {
            Node::Split {
                split,
                ratio,
                first,
                second,
            } => {
                let (a, b) = divide(area, *split, *ratio);
                match path.split_first() {
                    None => {
                        let (start, len) = match split {
                            Split::Right => (area.x, area.width),
                            Split::Down => (area.y, area.height),
                        };
                        if len > 0 {
                            let share = (at.saturating_sub(start) as u32 + 1) * 100 / len as u32;
                            *ratio = (share as u16).clamp(MIN_RATIO, 100 - MIN_RATIO);
                        }
                    }
                    Some((false, rest)) => first.drag(rest, a, at),
                    Some((true, rest)) => second.drag(rest, b, at),
                }
            }
            Node::Window(_) => {}
        }
    }

    /// Grow (`delta` > 0) or shrink the window towards `direction` by moving the nearest
    /// border on that side.
    pub fn resize(&mut self, target: WindowId, direction: Direction, delta: i16) -> bool {
        let Node::Split {
            split,
            ratio,
            first,
            second,
        } = self
        else {
            return false;
        };
        let in_first = first.contains(target);
        if !in_first && !second.contains(target) {
            return false;
        }
        // Deeper splits are nearer the window: let them take it first.
        let deeper = if in_first {
            first.resize(target, direction, delta)
        } else {
            second.resize(target, direction, delta)
        };
        if deeper {
            return true;
        }
        if *split != direction.split() {
            return false;
        }
        let towards_second = matches!(direction, Direction::Right | Direction::Down);
        // The border between the halves moves only if it is on the side asked for.
        if in_first != towards_second {
            return false;
        }
        let step = if towards_second { delta } else { -delta };
        *ratio = (*ratio as i16 + step).clamp(MIN_RATIO as i16, (100 - MIN_RATIO) as i16) as u16;
        true
    }

    /// Exchange two windows' places.
    pub fn swap(&mut self, a: WindowId, b: WindowId) {
        match self {
            Node::Window(id) if *id == a => *id = b,
            Node::Window(id) if *id == b => *id = a,
            Node::Window(_) => {}
            Node::Split { first, second, .. } => {
                first.swap(a, b);
                second.swap(a, b);
            }
        }
    }

    /// Keep only the windows `keep` says exist (a restored session naming a window
    /// that could not be restored). None when nothing is left.
    pub fn retain(self, keep: &dyn Fn(WindowId) -> bool) -> Option<Node> {
        match self {
            Node::Window(id) => keep(id).then_some(Node::Window(id)),
            Node::Split {
                split,
                ratio,
                first,
                second,
            } => match (first.retain(keep), second.retain(keep)) {
                (Some(a), Some(b)) => Some(Node::Split {
                    split,
                    ratio: ratio.clamp(MIN_RATIO, 100 - MIN_RATIO),
                    first: Box::new(a),
                    second: Box::new(b),
                }),
                (Some(only), None) | (None, Some(only)) => Some(only),
                (None, None) => None,
            },
        }
    }
}

fn divide(area: Rect, split: Split, ratio: u16) -> (Rect, Rect) {
    match split {
        Split::Right => {
            let a = (area.width as u32 * ratio as u32 / 100) as u16;
            (
                Rect::new(area.x, area.y, a, area.height),
                Rect::new(area.x + a, area.y, area.width - a, area.height),
            )
        }
        Split::Down => {
            let a = (area.height as u32 * ratio as u32 / 100) as u16;
            (
                Rect::new(area.x, area.y, area.width, a),
                Rect::new(area.x, area.y + a, area.width, area.height - a),
            )
        }
    }
}

/// The window next to `from` in `direction`: among those beyond its edge that overlap
/// it across, the nearest, then the one most in line with its centre.
pub fn neighbour(
    layout: &[(WindowId, Rect)],
    from: WindowId,
    direction: Direction,
) -> Option<WindowId> {
    let (_, here) = layout.iter().find(|(id, _)| *id == from)?;
    let centre = |r: &Rect| {
        (
            r.x as i32 * 2 + r.width as i32,
            r.y as i32 * 2 + r.height as i32,
        )
    };
    let (cx, cy) = centre(here);
    layout
        .iter()
        .filter(|(id, _)| *id != from)
        .filter_map(|(id, r)| {
            let overlap_x = r.x < here.right() && here.x < r.right();
            let overlap_y = r.y < here.bottom() && here.y < r.bottom();
            let gap = match direction {
                Direction::Left if overlap_y && r.right() <= here.x + 1 => {
                    here.x as i32 - r.right() as i32
                }
                Direction::Right if overlap_y && r.x + 1 >= here.right() => {
                    r.x as i32 - here.right() as i32
                }
                Direction::Up if overlap_x && r.bottom() <= here.y + 1 => {
                    here.y as i32 - r.bottom() as i32
                }
                Direction::Down if overlap_x && r.y + 1 >= here.bottom() => {
                    r.y as i32 - here.bottom() as i32
                }
                _ => return None,
            };
            let (ox, oy) = centre(r);
            let off = match direction {
                Direction::Left | Direction::Right => (oy - cy).abs(),
                Direction::Up | Direction::Down => (ox - cx).abs(),
            };
            Some((gap, off, *id))
        })
        .min_by_key(|(gap, off, _)| (*gap, *off))
        .map(|(_, _, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: WindowId = WindowId(1);
    const B: WindowId = WindowId(2);
    const C: WindowId = WindowId(3);

    /// A | (B over C)
    fn three() -> Node {
        let mut tree = Node::Window(A);
        tree.split(A, Split::Right, B);
        tree.split(B, Split::Down, C);
        tree
    }

    #[test]
    fn splits_lay_out_and_focus_moves_by_geometry() {
        let tree = three();
        let layout = tree.layout(Rect::new(0, 0, 80, 24));
        assert_eq!(
            layout,
            vec![
                (A, Rect::new(0, 0, 40, 24)),
                (B, Rect::new(40, 0, 40, 12)),
                (C, Rect::new(40, 12, 40, 12)),
            ]
        );
        assert_eq!(neighbour(&layout, A, Direction::Right), Some(B));
        assert_eq!(neighbour(&layout, B, Direction::Down), Some(C));
        assert_eq!(neighbour(&layout, C, Direction::Left), Some(A));
        assert_eq!(neighbour(&layout, A, Direction::Left), None);
        assert_eq!(neighbour(&layout, C, Direction::Up), Some(B));
    }

    #[test]
    fn closing_gives_the_area_to_the_sibling() {
        let mut tree = three();
        assert_eq!(tree.remove(B), Some(C), "the focus goes beside");
        assert_eq!(tree.windows(), vec![A, C]);
        assert_eq!(
            tree.layout(Rect::new(0, 0, 80, 24))[1],
            (C, Rect::new(40, 0, 40, 24))
        );
        assert_eq!(tree.remove(A), Some(C));
        assert_eq!(tree, Node::Window(C));
        assert_eq!(tree.remove(C), None, "the last window stays");
    }

    #[test]
    fn resize_moves_the_nearest_border_on_that_side() {
        let mut tree = three();
        assert!(tree.resize(A, Direction::Right, 10));
        assert_eq!(tree.layout(Rect::new(0, 0, 100, 20))[0].1.width, 60);
        assert!(tree.resize(C, Direction::Up, 20));
        assert_eq!(tree.layout(Rect::new(0, 0, 100, 20))[2].1.height, 14);
        assert!(!tree.resize(A, Direction::Left, 10), "nothing left of A");
        for _ in 0..20 {
            tree.resize(A, Direction::Right, 10);
        }
        assert_eq!(tree.layout(Rect::new(0, 0, 100, 20))[0].1.width, 90);
    }

    #[test]
    fn swap_and_retain() {
        let mut tree = three();
        tree.swap(A, C);
        assert_eq!(tree.windows(), vec![C, B, A]);
        let kept = tree.retain(&|id| id != B).unwrap();
        assert_eq!(kept.windows(), vec![C, A]);
        assert_eq!(Node::Window(A).retain(&|_| false), None);
    }

    #[test]
    fn dragging_a_border_sets_the_ratio() {
        let mut tree = three();
        let area = Rect::new(0, 0, 100, 20);
        let borders = tree.borders(area);
        assert_eq!(borders[0].1, Split::Right);
        tree.drag(&borders[0].2, area, 29);
        assert_eq!(tree.layout(area)[0].1.width, 30);
        tree.drag(&borders[0].2, area, 0);
        assert_eq!(tree.layout(area)[0].1.width, 10, "never below 10%");
    }

    #[test]
    fn the_tree_round_trips_as_json() {
        let tree = three();
        let json = serde_json::to_string(&tree).unwrap();
        assert_eq!(serde_json::from_str::<Node>(&json).unwrap(), tree);
    }
}
