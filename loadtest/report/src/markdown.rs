//! `report.md`: the same blocks as `report.html`, as GitHub-flavored Markdown that a git
//! forge renders, with the PNG charts beside it (`charts/*.png`).

use std::fmt::Write as _;

use super::document::{Block, Document, Tone};

pub(crate) fn render(document: &Document) -> String {
    let mut page = format!("# {}\n\n", escape(&document.title));
    page.push_str("Colors in every chart: blue = monolith, orange = microservices.\n\n");
    let contents: Vec<String> = document
        .sections()
        .iter()
        .map(|(_, text)| format!("[{}](#{})", escape(text), anchor(text)))
        .collect();
    let _ = writeln!(page, "{}\n", contents.join(" · "));
    for block in &document.blocks {
        block_markdown(&mut page, block);
    }
    page
}

fn block_markdown(page: &mut String, block: &Block) {
    match block {
        Block::Heading { level, text, .. } => {
            let _ = writeln!(page, "{} {}\n", "#".repeat(*level as usize), escape(text));
        }
        Block::Paragraph(text) => {
            let _ = writeln!(page, "{}\n", escape(text));
        }
        Block::List(items) => {
            for (tone, text) in items {
                let _ = writeln!(page, "- {}{}", mark(*tone), escape(text));
            }
            page.push('\n');
        }
        Block::Table { header, rows } => {
            let cells: Vec<String> = header.iter().map(|text| cell(text)).collect();
            let _ = writeln!(page, "| {} |", cells.join(" | "));
            let _ = writeln!(page, "|{}", "---|".repeat(header.len()));
            for row in rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|entry| format!("{}{}", mark(entry.tone), cell(&entry.text)))
                    .collect();
                let _ = writeln!(page, "| {} |", cells.join(" | "));
            }
            page.push('\n');
        }
        Block::Figure(figure) => {
            let _ = writeln!(
                page,
                "![{}](charts/{}.png)\n",
                escape(&figure.title),
                figure.stem
            );
        }
        Block::Files(files) => {
            for (name, href) in files {
                match href {
                    Some(href) => {
                        let _ = writeln!(page, "- [{}]({href})", escape(name));
                    }
                    None => {
                        let _ = writeln!(page, "- {} (not in this folder)", escape(name));
                    }
                }
            }
            page.push('\n');
        }
        Block::Fold {
            summary, blocks, ..
        } => {
            let _ = writeln!(page, "#### {}\n", escape(summary));
            for block in blocks {
                block_markdown(page, block);
            }
        }
    }
}

/// What a toned cell or item starts with: forges render these as colored symbols.
fn mark(tone: Tone) -> &'static str {
    match tone {
        Tone::Plain | Tone::Muted => "",
        Tone::Good => "✅ ",
        Tone::Bad => "❌ ",
        Tone::Warn => "⚠️ ",
    }
}

/// Text in a table cell: no line breaks, no column separators.
fn cell(text: &str) -> String {
    escape(text).replace('\n', " ").replace('|', "\\|")
}

/// Text as Markdown: characters that would start emphasis, links, code or HTML are
/// escaped. Underscores inside words stay (GFM does not read them as emphasis, and fault
/// kinds like `cpu_hog` are common).
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' | '*' | '`' | '[' | ']' | '#' => {
                escaped.push('\\');
                escaped.push(character);
            }
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The anchor GitHub gives a heading: lower case, spaces to dashes, punctuation dropped.
pub(crate) fn anchor(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter_map(|character| match character {
            ' ' => Some('-'),
            '-' | '_' => Some(character),
            other if other.is_alphanumeric() => Some(other),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_open_links_or_html_and_anchors_follow_github() {
        assert_eq!(escape("[a](b) <i>*x*"), "\\[a\\](b) &lt;i&gt;\\*x\\*");
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(
            anchor("Environment and settings"),
            "environment-and-settings"
        );
        assert_eq!(anchor("Cost: CPU & memory"), "cost-cpu--memory");
    }
}
