//! What a fault the platform realizes (a network fault, a database cut, a CPU limit) left
//! in force: what to say about it, and the steps that put it back at heal.

use std::any::Any;

/// A fault the platform put in force, or why it could not.
#[derive(Default)]
pub struct Injection {
    /// Why the fault could not be realized on this build, platform or backend ("not
    /// applicable: ...", "unavailable: ..."); nothing is in force then.
    pub not_realized: Option<String>,
    /// What was in force: the proxy's toxics, the CPU quota, the network left.
    pub note: Option<String>,
    /// The platform's own undo steps, handed back to it by `Target::lift`.
    pub(crate) undo: Vec<Box<dyn Any + Send>>,
}

impl Injection {
    /// An in-process fault: nothing for the platform to undo, only a note.
    pub fn noted(note: String) -> Injection {
        Injection {
            note: Some(note),
            ..Injection::default()
        }
    }

    /// Nothing in force, and why: starts "not applicable:" (the build or platform has no
    /// such thing) or "unavailable:" (this machine or backend cannot realize it).
    pub fn not_realized(why: impl Into<String>) -> Injection {
        Injection {
            not_realized: Some(why.into()),
            ..Injection::default()
        }
    }

    /// In force, described by `note`, put back by `undo` (the platform's own steps).
    pub(crate) fn applied<Step: Any + Send>(note: String, undo: Vec<Step>) -> Injection {
        Injection {
            not_realized: None,
            note: Some(note),
            undo: undo
                .into_iter()
                .map(|step| Box::new(step) as Box<dyn Any + Send>)
                .collect(),
        }
    }
}
