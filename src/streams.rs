//! The two streams side by side: an expand of a later release may run while an older
//! contract still waits for its gate. The check that warns when both touch the same table is
//! the lint rule `expand-touches-waiting-contract`, re-exported here where the commands
//! look for it.

pub use crate::lint::rules::expand_touches_waiting_contract::{
    flag_expands_touching_waiting_contracts, touched_tables,
};
