//! Integration tests live in tests/; see tests/tests/common/mod.rs.
