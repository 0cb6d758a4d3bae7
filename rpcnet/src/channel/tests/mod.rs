//! The balanced channel's policies over mock connections (`mock.rs`) in paused time:
//! admission, failures and retries, and following a source of endpoints. No sockets, no
//! sleeps: time moves only when every task waits.

mod admission;
mod failures;
mod membership;
mod mock;
mod policy;
