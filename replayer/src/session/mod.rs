//! The sans-IO parts of one participant's session, driven by the client
//! ([`crate::client`]) with the time and the packets: what to send when
//! ([`pacer`]), what each received packet means ([`receive`]), what a
//! `browser` sends besides its media ([`control`]: DIAGNOSTICS, HEALTH, RTT
//! probes, key-frame requests), and when an adapting client changes its
//! video rendition ([`adapt`]); which simulcast layers a sender sends
//! ([`simulcast`]) and what a receiver shows and asks for ([`view`]). No sockets and
//! no clock of their own, so they are tested on made-up times and packets.

pub mod adapt;
pub mod control;
pub mod pacer;
pub mod receive;
pub mod simulcast;
pub mod view;
