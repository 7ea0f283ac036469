//! The report as a list of blocks — headings, paragraphs, tables, figures — built once and
//! rendered twice, by [`super::html`] and [`super::markdown`]. That is why the pages are
//! written by hand rather than with a template crate: two templates would state every
//! section twice and drift apart; one block list cannot.

use super::charts::Figure;

/// How a table cell or list item is colored: green for what held, red for what broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tone {
    Plain,
    Good,
    Bad,
    Warn,
    Muted,
}

#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub text: String,
    pub tone: Tone,
}

#[derive(Clone, Debug)]
pub(crate) enum Block {
    /// `id` is the anchor the table of contents links to (level 2 only).
    Heading {
        level: u8,
        id: String,
        text: String,
    },
    Paragraph(String),
    List(Vec<(Tone, String)>),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<Cell>>,
    },
    Figure(Figure),
    /// Relative links to files of the run; `None` for a file that is not in the folder.
    Files(Vec<(String, Option<String>)>),
    /// A group the HTML page can fold away (many charts of one kind); `open` when it starts
    /// unfolded.
    Fold {
        summary: String,
        open: bool,
        blocks: Vec<Block>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            tone: Tone::Plain,
        }
    }

    pub fn toned(text: impl Into<String>, tone: Tone) -> Cell {
        Cell {
            text: text.into(),
            tone,
        }
    }
}

impl Document {
    pub fn new(title: impl Into<String>) -> Document {
        Document {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// A section: a level-2 heading with an anchor.
    pub fn section(&mut self, id: &str, text: &str) {
        self.blocks.push(Block::Heading {
            level: 2,
            id: id.to_owned(),
            text: text.to_owned(),
        });
    }

    pub fn subsection(&mut self, text: &str) {
        self.blocks.push(Block::Heading {
            level: 3,
            id: String::new(),
            text: text.to_owned(),
        });
    }

    pub fn paragraph(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }

    pub fn table(&mut self, header: &[&str], rows: Vec<Vec<Cell>>) {
        self.blocks.push(Block::Table {
            header: header.iter().map(|text| (*text).to_owned()).collect(),
            rows,
        });
    }

    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }

    /// The level-2 headings, for a table of contents.
    pub fn sections(&self) -> Vec<(&str, &str)> {
        self.blocks
            .iter()
            .filter_map(|block| match block {
                Block::Heading { level: 2, id, text } => Some((id.as_str(), text.as_str())),
                _ => None,
            })
            .collect()
    }
}
