//! Rooms back from what a store holds (`Server::restore`).
