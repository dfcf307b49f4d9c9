//! The one reading, shared: whoever hears the cluster's events advances it, and every pane
//! reads the same one.
//!
//! A launched run's supervisor applies each event once, to its [`Reading`]; the console holds
//! the same [`Reading`] and only reads it. A console with no supervisor (a recording, a cluster
//! it attached to) advances one of its own. Reads nest: a console frame holds one for its
//! whole drawing, so every pane shows the same moment, and the panes' own reads inside it see
//! that moment too; the supervisor's next event waits for the frame to end.

use std::fmt;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::ClusterView;

/// A [`ClusterView`] shared between the code that advances it and the code that shows it.
#[derive(Clone, Default)]
pub struct Reading(Arc<RwLock<ClusterView>>);

impl Reading {
    pub fn new(view: ClusterView) -> Self {
        Reading(Arc::new(RwLock::new(view)))
    }

    /// The reading as it is now. A read inside another read of the same thread never waits
    /// (a waiting writer waits for both).
    pub fn read(&self) -> RwLockReadGuard<'_, ClusterView> {
        self.0.read_recursive()
    }

    /// The reading, to advance it.
    pub fn write(&self) -> RwLockWriteGuard<'_, ClusterView> {
        self.0.write()
    }

    /// Whether both are the same reading.
    pub fn is(&self, other: &Reading) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let view = self.read();
        f.debug_struct("Reading")
            .field("primary", &view.primary)
            .field("term", &view.term)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nest_and_both_handles_see_one_reading() {
        let reading = Reading::new(ClusterView::new("coordinator", 1, false));
        let console = reading.clone();
        assert!(console.is(&reading));
        assert!(!console.is(&Reading::default()));
        reading.write().term = 3;
        let frame = console.read();
        // A pane's own read inside the frame's.
        assert_eq!(console.read().term, 3);
        assert_eq!(frame.term, 3);
    }
}
