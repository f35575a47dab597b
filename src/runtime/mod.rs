//! Session logic and live state.
