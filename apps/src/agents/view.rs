//! How the Agent Console looks: the graphs on the left; on the right the selected graph's
//! DAG (each node indented by its depth, with its live state), then the selected node's
//! needs, arguments, result or error, and the graph's log; a footer with the state.

use aether_proto::api::agent::{GraphState, NodeState};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{Agents, Focus};
use app_kit::app::{Level, ViewCx};
use app_kit::theme::Theme;
use app_kit::widgets::{fit, wrap_words};

pub(super) fn render(agents: &Agents, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    let [body, footer] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    // A narrow window shows one column: the graphs, or the selected graph's nodes.
    let narrow = body.width < 48;
    let (left, right) = if narrow {
        match (agents.focus, &agents.graph) {
            (Focus::Nodes, Some(_)) => (Rect::default(), body),
            _ if agents.graphs.is_empty() => (Rect::default(), body),
            _ => (body, Rect::default()),
        }
    } else {
        let left_width = (body.width / 3).clamp(16, 40);
        app_kit::widgets::beside(body, left_width, buf, theme)
    };
    if left.width > 0 {
        render_graphs(agents, left, buf, cx);
    }
    if right.width == 0 {
        render_footer(agents, footer, buf, cx);
        return;
    }
    match &agents.graph {
        Some(_) => {
            let detail_height = if right.height >= 14 {
                right.height * 2 / 5
            } else {
                0
            };
            let [nodes, detail] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(detail_height)])
                    .areas(right);
            render_nodes(agents, nodes, buf, cx);
            if detail.height > 0 {
                render_detail(agents, detail, buf, cx);
            }
        }
        None => {
            let text = if !agents.loaded {
                "loading…"
            } else if agents.graphs.is_empty() {
                "No graphs yet. Type `? your goal` in the VM Terminal, or run one with \
                 `aetherctl agent run FILE`."
            } else {
                "Select a graph."
            };
            for (y, row) in (right.y..right.bottom()).zip(wrap_words(text, right.width as usize)) {
                Line::styled(row, theme.dim()).render(Rect::new(right.x, y, right.width, 1), buf);
            }
        }
    }
    render_footer(agents, footer, buf, cx);
}

fn render_footer(agents: &Agents, footer: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let (text, style) = match (&agents.message, &agents.graph) {
        (Some((level, text)), _) => (
            text.clone(),
            match level {
                Level::Info => theme.info(),
                Level::Warn => theme.warn(),
                Level::Error => theme.error(),
            },
        ),
        (None, Some(graph)) => (
            format!(
                "{} {}: {}{}",
                graph.id,
                graph.name,
                graph_state(graph.state),
                graph
                    .error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
            graph_style(graph.state, theme),
        ),
        (None, None) => (
            "Tab: graphs/nodes · a approve · r retry · c cancel".into(),
            theme.dim(),
        ),
    };
    Line::styled(fit(&text, footer.width as usize), style).render(footer, buf);
}

fn render_graphs(agents: &Agents, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let rows = agents
        .graph_list
        .visible(agents.graphs.len(), area.height as usize);
    for (row, i) in rows.enumerate() {
        let graph = &agents.graphs[i];
        let mark = match graph.state {
            GraphState::Running => theme.glyph("◐", "*"),
            GraphState::Waiting => theme.glyph("?", "?"),
            GraphState::Done => theme.glyph("✓", "+"),
            GraphState::Failed => theme.glyph("✗", "x"),
            GraphState::Cancelled => theme.glyph("⊘", "/"),
        };
        let text = fit(&format!("{mark} {}", graph.name), area.width as usize);
        let selected = i == agents.graph_list.selected;
        let style = match (selected, agents.focus == Focus::Graphs && cx.focused) {
            (true, true) => theme.selection(),
            (true, false) => theme.selection_unfocused(),
            _ => graph_style(graph.state, theme),
        };
        let line_area = Rect::new(area.x, area.y + row as u16, area.width, 1);
        buf.set_style(line_area, if selected { style } else { theme.base() });
        Line::styled(text, style).render(line_area, buf);
    }
}

fn render_nodes(agents: &Agents, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let Some(graph) = &agents.graph else { return };
    let rows = agents
        .node_list
        .visible(graph.nodes.len(), area.height as usize);
    for (row, i) in rows.enumerate() {
        let node = &graph.nodes[i];
        let depth = agents.depths.get(i).copied().unwrap_or(0).min(8);
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}{} ", "  ".repeat(depth - 1), theme.glyph("└", "`"))
        };
        let tries = if node.attempts > 1 {
            format!(" try {}", node.attempts)
        } else {
            String::new()
        };
        let selected = i == agents.node_list.selected;
        let style = match (selected, agents.focus == Focus::Nodes && cx.focused) {
            (true, true) => theme.selection(),
            (true, false) => theme.selection_unfocused(),
            _ => node_style(node.state, theme),
        };
        let line = Line::from(vec![
            Span::styled(indent.clone(), if selected { style } else { theme.dim() }),
            Span::styled(format!("{} ", node_glyph(node.state, theme)), style),
            // Ids pad to a common column, so tools and states line up whatever the depth.
            Span::styled(
                format!(
                    "{:<w$} ",
                    node.id,
                    w = 16usize
                        .saturating_sub(unicode_width::UnicodeWidthStr::width(indent.as_str()))
                ),
                style,
            ),
            Span::styled(
                format!("{:<12} ", node.tool),
                if selected { style } else { theme.dim() },
            ),
            Span::styled(format!("{}{tries}", node_state(node.state)), style),
        ]);
        let line_area = Rect::new(area.x, area.y + row as u16, area.width, 1);
        if selected {
            buf.set_style(line_area, style);
        }
        line.render(line_area, buf);
    }
}

fn render_detail(agents: &Agents, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let Some(node) = agents.selected_node() else {
        return;
    };
    let width = area.width as usize;
    let mut lines: Vec<(String, Style)> =
        vec![(theme.glyph("─", "-").repeat(width), theme.border(false))];
    if !node.needs.is_empty() {
        lines.push((format!("needs: {}", node.needs.join(", ")), theme.dim()));
    }
    let mut field = |label: &str, text: String, style: Style| {
        for (i, row) in wrap_words(&format!("{label}: {text}"), width)
            .into_iter()
            .enumerate()
        {
            if i >= 4 {
                break;
            }
            lines.push((row, style));
        }
    };
    if let Some(ask) = &node.ask {
        // What it waits for you to decide, in words (`a` shows the arguments in full).
        field("does", ask.action.replace('\n', "; "), theme.warn());
    }
    field("args", node.args.to_string(), theme.base());
    if let Some(error) = &node.error {
        field("error", error.clone(), theme.error());
    }
    if let Some(result) = &node.result {
        field("result", result.to_string(), theme.info());
    }
    let room = (area.height as usize).saturating_sub(lines.len());
    let start = agents.log.len().saturating_sub(room);
    for line in &agents.log[start..] {
        lines.push((line.clone(), theme.dim()));
    }
    for (row, (text, style)) in lines.into_iter().take(area.height as usize).enumerate() {
        Line::styled(fit(&text, width), style)
            .render(Rect::new(area.x, area.y + row as u16, area.width, 1), buf);
    }
}

fn node_glyph(state: NodeState, theme: &Theme) -> &'static str {
    match state {
        NodeState::Pending => theme.glyph("○", "o"),
        NodeState::Approval => theme.glyph("?", "?"),
        NodeState::Running => theme.glyph("◐", "*"),
        NodeState::Retrying => theme.glyph("↻", "r"),
        NodeState::Done => theme.glyph("✓", "+"),
        NodeState::Failed => theme.glyph("✗", "x"),
        NodeState::Skipped => theme.glyph("–", "-"),
        NodeState::Cancelled => theme.glyph("⊘", "/"),
        NodeState::Unknown => theme.glyph("‽", "!"),
    }
}

fn node_state(state: NodeState) -> &'static str {
    match state {
        NodeState::Pending => "waiting",
        NodeState::Approval => "approve? (a)",
        NodeState::Running => "running",
        NodeState::Retrying => "retrying",
        NodeState::Done => "done",
        NodeState::Failed => "failed",
        NodeState::Skipped => "skipped",
        NodeState::Cancelled => "cancelled",
        NodeState::Unknown => "unknown (a/r)",
    }
}

fn node_style(state: NodeState, theme: &Theme) -> Style {
    match state {
        NodeState::Done => theme.info(),
        NodeState::Failed => theme.error(),
        NodeState::Approval | NodeState::Unknown | NodeState::Retrying => theme.warn(),
        NodeState::Running => theme.accent(),
        _ => theme.dim(),
    }
}

fn graph_state(state: GraphState) -> &'static str {
    match state {
        GraphState::Running => "running",
        GraphState::Waiting => "waiting for you",
        GraphState::Done => "done",
        GraphState::Failed => "failed",
        GraphState::Cancelled => "cancelled",
    }
}

fn graph_style(state: GraphState, theme: &Theme) -> Style {
    match state {
        GraphState::Done => theme.info(),
        GraphState::Failed => theme.error(),
        GraphState::Waiting => theme.warn(),
        GraphState::Running => theme.accent(),
        GraphState::Cancelled => theme.dim(),
    }
}
