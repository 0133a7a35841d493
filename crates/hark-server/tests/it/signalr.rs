//! The SignalR hub driven by the official JavaScript client (being built).
