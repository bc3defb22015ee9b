//! chat-cli driver
