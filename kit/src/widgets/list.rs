//! The visible window of a long list: only what fits is drawn, so 100,000 entries
//! scroll as fast as ten.

use std::cell::Cell;

/// Selection and scroll offset of a list of `len` rows shown `height` rows at a time.
/// The offset follows the selection as it is drawn (a view knows its height, an update
/// does not), so it lives in a `Cell`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListWindow {
    pub selected: usize,
    offset: Cell<usize>,
    height: Cell<usize>,
}

impl ListWindow {
    pub fn move_by(&mut self, delta: isize, len: usize) {
        if len == 0 {
            self.selected = 0;
            return;
        }
        let target = self.selected as isize + delta;
        self.selected = target.clamp(0, len as isize - 1) as usize;
    }

    pub fn select(&mut self, index: usize, len: usize) {
        self.selected = index.min(len.saturating_sub(1));
    }

    /// A page: the height last drawn.
    pub fn page(&self) -> isize {
        self.height.get().max(1) as isize
    }

    /// The offset of the first row drawn (for mapping clicks to rows).
    pub fn offset(&self) -> usize {
        self.offset.get()
    }

    /// The rows to draw at this height; moves the offset only as far as the selection
    /// needs.
    pub fn visible(&self, len: usize, height: usize) -> std::ops::Range<usize> {
        self.height.set(height);
        if len == 0 || height == 0 {
            self.offset.set(0);
            return 0..0;
        }
        let selected = self.selected.min(len - 1);
        let mut offset = self.offset.get();
        if selected < offset {
            offset = selected;
        } else if selected >= offset + height {
            offset = selected + 1 - height;
        }
        offset = offset.min(len.saturating_sub(height));
        self.offset.set(offset);
        offset..(offset + height).min(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_stays_in_view_and_the_view_stays_put() {
        let mut w = ListWindow::default();
        w.move_by(50, 100_000);
        assert_eq!(w.visible(100_000, 10), 41..51);
        w.move_by(-5, 100_000);
        assert_eq!(
            w.visible(100_000, 10),
            41..51,
            "moving inside the view keeps it"
        );
        w.move_by(-1_000, 100_000);
        assert_eq!(w.selected, 0);
        assert_eq!(w.visible(100_000, 10), 0..10);
        w.move_by(1_000_000, 100_000);
        assert_eq!(w.visible(100_000, 10), 99_990..100_000);
        assert_eq!(w.visible(0, 10), 0..0);
    }
}
