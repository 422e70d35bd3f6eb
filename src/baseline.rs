//! The thread-per-connection baseline: the same [`Handler`](crate::Handler)
//! driven on blocking `std::net` sockets, one OS thread per connection.
