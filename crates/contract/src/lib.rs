//! The pipeline's contract (`docs/SPEC.md`): the three record kinds and
//! their rows (SPEC 2), the raw schema both engines read them with, every
//! name derived from a deployment's user id (SPEC 1, 8.1) and the object
//! keys of the sink layout (SPEC 3.3). Nothing else in the workspace spells
//! a topic, bucket, stream or role name, or an object key.

pub mod layout;
mod names;
mod records;

pub use layout::{dead_letter_key, listing_start_after, object_key, start_offset_of};
pub use names::{DEFAULT_REGION, DEFAULT_UID, Names, STACK_TAG, check_uid};
pub use records::{Geo, Kind, Pin, RawType, RecordRef, Round, User, raw_columns};
