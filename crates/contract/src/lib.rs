//! The pipeline's contract (`docs/SPEC.md`): the three record kinds and
//! their rows (SPEC 2), the raw schema both engines read them with, and
//! every name derived from a deployment's user id (SPEC 1, 8.1). Nothing
//! else in the workspace spells a topic, bucket, stream or role name.

mod names;
mod records;

pub use names::{DEFAULT_REGION, DEFAULT_UID, Names, STACK_TAG, check_uid};
pub use records::{Geo, Kind, Pin, RawType, RecordRef, Round, User, raw_columns};
