//! The control API over real HTTP: accounts, stored rooms, room tokens and share codes, on a real
//! server with its real store (SQLite, and PostgreSQL for the cases stamped on both backends).
//!
//! One module per part of the API: `accounts` (sign-up, sign-in, refresh, the admin grant),
//! `rooms` (stored rooms and their room tokens), `invites` (share codes) and `openapi` (the
//! document that describes every route).

mod accounts;
mod invites;
mod openapi;
mod rooms;
