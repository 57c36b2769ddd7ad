//! The explorer's folder tree: folders only, opened lazily (a `vfs.list` when a folder is
//! first expanded), kept as a flat list of visible rows so it draws like any list.

use aether_proto::api::vfs::{self, Kind};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Widget;

use app_kit::key::{Key, KeyCode};
use app_kit::path;
use app_kit::widgets::{ListWindow, fit};
use app_kit::{Answer, ViewCx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub path: String,
    pub depth: usize,
    pub expanded: bool,
    /// Its sub-folders are in the tree (a folder with none is loaded and childless).
    pub loaded: bool,
}

/// What a key did in the tree.
pub(crate) enum TreeKey {
    Nothing,
    /// Show this folder in the list.
    Show(String),
    /// List this folder (its sub-folders come in with [`FolderTree::answered`]).
    Load(String),
    /// Back to the list.
    Leave,
}

#[derive(Debug, Default)]
pub(crate) struct FolderTree {
    pub nodes: Vec<Node>,
    pub list: ListWindow,
}

impl FolderTree {
    /// The tree with the root open; its folders come once `/` is listed.
    pub fn open() -> FolderTree {
        FolderTree {
            nodes: vec![Node {
                path: "/".into(),
                depth: 0,
                expanded: true,
                loaded: false,
            }],
            ..FolderTree::default()
        }
    }

    /// A folder's listing: its sub-folders go in under it.
    pub fn answered(&mut self, folder: &str, answer: Answer<vfs::List>) {
        let Some(at) = self.nodes.iter().position(|n| n.path == folder) else {
            return;
        };
        let depth = self.nodes[at].depth + 1;
        // Whatever was under it before goes: this answer is the truth now.
        let end = self.subtree_end(at);
        self.nodes.drain(at + 1..end);
        self.nodes[at].loaded = true;
        if let Ok(listing) = answer {
            let mut dirs: Vec<String> = listing
                .entries
                .into_iter()
                .filter(|e| e.kind == Kind::Dir)
                .map(|e| path::join(folder, &e.name))
                .collect();
            dirs.sort();
            let children = dirs.into_iter().map(|path| Node {
                path,
                depth,
                expanded: false,
                loaded: false,
            });
            self.nodes.splice(at + 1..at + 1, children);
        }
    }

    /// The index after the last descendant of `at`.
    fn subtree_end(&self, at: usize) -> usize {
        let depth = self.nodes[at].depth;
        self.nodes[at + 1..]
            .iter()
            .position(|n| n.depth <= depth)
            .map_or(self.nodes.len(), |i| at + 1 + i)
    }

    /// Rows shown: nodes whose ancestors are all expanded.
    pub fn visible(&self) -> Vec<usize> {
        let mut shown = Vec::new();
        let mut hidden_below: Option<usize> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(depth) = hidden_below {
                if node.depth > depth {
                    continue;
                }
                hidden_below = None;
            }
            shown.push(i);
            if !node.expanded {
                hidden_below = Some(node.depth);
            }
        }
        shown
    }

    fn selected_node(&self) -> Option<usize> {
        self.visible().get(self.list.selected).copied()
    }

    /// Select the row of `folder`, if the tree shows it.
    pub fn reveal(&mut self, folder: &str) {
        if let Some(row) = self
            .visible()
            .iter()
            .position(|&i| self.nodes[i].path == folder)
        {
            self.list.selected = row;
        }
    }

    pub fn on_key(&mut self, key: Key) -> TreeKey {
        let len = self.visible().len();
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.list.move_by(1, len),
            KeyCode::Up | KeyCode::Char('k') => self.list.move_by(-1, len),
            KeyCode::Tab | KeyCode::Esc => return TreeKey::Leave,
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Enter => {
                let Some(at) = self.selected_node() else {
                    return TreeKey::Nothing;
                };
                let folder = self.nodes[at].path.clone();
                self.nodes[at].expanded = true;
                if !self.nodes[at].loaded {
                    return TreeKey::Load(folder);
                }
                return TreeKey::Show(folder);
            }
            KeyCode::Left | KeyCode::Char('h') => {
                let Some(at) = self.selected_node() else {
                    return TreeKey::Nothing;
                };
                if self.nodes[at].expanded && at != 0 {
                    self.nodes[at].expanded = false;
                } else {
                    let parent = path::parent(&self.nodes[at].path);
                    self.reveal(&parent);
                }
                return TreeKey::Nothing;
            }
            _ => return TreeKey::Nothing,
        }
        match self.selected_node() {
            Some(at) => TreeKey::Show(self.nodes[at].path.clone()),
            None => TreeKey::Nothing,
        }
    }

    pub fn render(&self, area: Rect, buf: &mut Buffer, cx: &ViewCx, active: bool) {
        let theme = cx.theme;
        let shown = self.visible();
        let rows = self.list.visible(shown.len(), area.height as usize);
        for (row, index) in rows.enumerate() {
            let node = &self.nodes[shown[index]];
            let mark = match (node.expanded, node.loaded) {
                (true, _) => theme.glyph("▾ ", "- "),
                (false, _) => theme.glyph("▸ ", "+ "),
            };
            let name = if node.path == "/" {
                "/"
            } else {
                path::file_name(&node.path)
            };
            let text = format!("{}{mark}{name}", "  ".repeat(node.depth));
            let line_area = Rect::new(area.x, area.y + row as u16, area.width, 1);
            Line::styled(fit(&text, area.width as usize), theme.dir()).render(line_area, buf);
            if index == self.list.selected {
                let style = if active && cx.focused {
                    theme.selection()
                } else {
                    theme.selection_unfocused()
                };
                buf.set_style(line_area, style);
            }
        }
    }
}
