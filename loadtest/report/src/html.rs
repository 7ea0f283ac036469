//! `report.html`: one self-contained page — the charts inlined as SVG, the style inline, no
//! script and nothing fetched from the network — so it opens from disk, from a CI artifact
//! or from a mail attachment alike.

use std::fmt::Write as _;

use super::document::{Block, Document, Tone};

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 auto;
  max-width: 1180px; padding: 1.5rem 2rem 4rem; color: #1e1e1e; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: .25rem; margin-top: 2.4rem; }
h3 { margin-top: 1.6rem; }
nav { background: #f6f6f6; padding: .6rem 1rem; border-radius: 6px; }
nav a { margin-right: 1rem; white-space: nowrap; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #d4d4d4; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.good { background: #e3f4e1; }
td.bad { background: #fbe0e0; font-weight: 600; }
td.warn { background: #fdf0d5; }
td.muted { color: #777; }
li.bad { color: #a01010; font-weight: 600; }
li.warn { color: #8a5300; }
li.good { color: #1d6b1d; }
li.muted { color: #777; }
figure { margin: 1.2rem 0; }
figure svg { width: 100%; height: auto; border: 1px solid #e4e4e4; }
figcaption { font-size: .85rem; color: #555; }
details { margin: .6rem 0; }
summary { cursor: pointer; font-weight: 600; }
.legend-monolith { color: #1f77b4; font-weight: 600; }
.legend-micro { color: #eb730a; font-weight: 600; }
";

/// The page for `document`.
pub(crate) fn render(document: &Document) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&document.title),
        escape(&document.title)
    );
    page.push_str(
        "<p>Colors in every chart: <span class=\"legend-monolith\">monolith</span> and \
         <span class=\"legend-micro\">microservices</span>.</p>\n<nav>",
    );
    for (id, text) in document.sections() {
        let _ = write!(page, "<a href=\"#{}\">{}</a>", escape(id), escape(text));
    }
    page.push_str("</nav>\n");
    for block in &document.blocks {
        block_html(&mut page, block);
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn block_html(page: &mut String, block: &Block) {
    match block {
        Block::Heading { level, id, text } => {
            if id.is_empty() {
                let _ = writeln!(page, "<h{level}>{}</h{level}>", escape(text));
            } else {
                let _ = writeln!(
                    page,
                    "<h{level} id=\"{}\">{}</h{level}>",
                    escape(id),
                    escape(text)
                );
            }
        }
        Block::Paragraph(text) => {
            let _ = writeln!(page, "<p>{}</p>", escape(text));
        }
        Block::List(items) => {
            page.push_str("<ul>\n");
            for (tone, text) in items {
                let _ = writeln!(page, "<li{}>{}</li>", class(*tone), escape(text));
            }
            page.push_str("</ul>\n");
        }
        Block::Table { header, rows } => {
            page.push_str("<table>\n<thead><tr>");
            for text in header {
                let _ = write!(page, "<th>{}</th>", escape(text));
            }
            page.push_str("</tr></thead>\n<tbody>\n");
            for row in rows {
                page.push_str("<tr>");
                for cell in row {
                    let _ = write!(page, "<td{}>{}</td>", class(cell.tone), escape(&cell.text));
                }
                page.push_str("</tr>\n");
            }
            page.push_str("</tbody>\n</table>\n");
        }
        Block::Figure(figure) => {
            let _ = writeln!(
                page,
                "<figure id=\"{stem}\">\n{svg}\n<figcaption>{title} — \
                 <a href=\"charts/{stem}.png\">PNG</a> · <a href=\"charts/{stem}.svg\">SVG</a>\
                 </figcaption>\n</figure>",
                stem = escape(&figure.stem),
                svg = inline_svg(&figure.svg),
                title = escape(&figure.title),
            );
        }
        Block::Files(files) => {
            page.push_str("<ul>\n");
            for (name, href) in files {
                match href {
                    Some(href) => {
                        let _ = writeln!(
                            page,
                            "<li><a href=\"{}\">{}</a></li>",
                            escape(href),
                            escape(name)
                        );
                    }
                    None => {
                        let _ = writeln!(
                            page,
                            "<li class=\"muted\">{} (not in this folder)</li>",
                            escape(name)
                        );
                    }
                }
            }
            page.push_str("</ul>\n");
        }
        Block::Fold {
            summary,
            open,
            blocks,
        } => {
            let _ = writeln!(
                page,
                "<details{}>\n<summary>{}</summary>",
                if *open { " open" } else { "" },
                escape(summary)
            );
            for block in blocks {
                block_html(page, block);
            }
            page.push_str("</details>\n");
        }
    }
}

fn class(tone: Tone) -> &'static str {
    match tone {
        Tone::Plain => "",
        Tone::Good => " class=\"good\"",
        Tone::Bad => " class=\"bad\"",
        Tone::Warn => " class=\"warn\"",
        Tone::Muted => " class=\"muted\"",
    }
}

/// An SVG file's text as an element of the page. Inside HTML the SVG namespace is implied,
/// so its `xmlns` attribute (a URL the page would otherwise carry) goes.
pub(crate) fn inline_svg(svg: &str) -> String {
    let svg = svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "");
    match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    }
}

/// Text as HTML: the five characters that could open markup are escaped, and so is the
/// `//` of a URL quoted in a message (an error naming `http://127.0.0.1:…`), so no viewer
/// turns it into a link and the page holds no URL at all — it refers to nothing outside.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped.replace("://", ":&#47;&#47;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_open_markup_and_inlined_svg_carries_no_url() {
        assert_eq!(escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(
            escape("GET http://127.0.0.1:9/ready"),
            "GET http:&#47;&#47;127.0.0.1:9/ready"
        );
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"10\" xmlns=\"http://www.w3.org/2000/svg\"><text>x</text></svg>";
        assert_eq!(inline_svg(svg), "<svg width=\"10\"><text>x</text></svg>");
    }
}
