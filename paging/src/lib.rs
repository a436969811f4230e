//! OnCall's paging application: the **paging dispatcher**, a sans-IO core between what happens to
//! pages and the domain's escalation engine (`oncall_core::escalation::Engine`), and the thin
//! tokio task around it ([`escalations::Paging`]), plus text notifications and outbound webhooks.
//!
//! What comes in: [`dispatcher::Input`]s — a request opened (with its urgency and the business
//! hours), a deferral that could not be stored, deferred requests due, an escalation begun or
//! taken over from another instance, a person looked up for a notification, a notification that
//! failed, the outcome of a call or text (ringing/delivered, answered, accepted, declined,
//! completed, escalate now, snooze, failed: 486, no answer, text refused), a text reply, a lease
//! lost — each with the current time (`Timestamp`), plus `handle_timeout(now)` at
//! `poll_timeout()` (heartbeats and escalation timers). What goes out: [`dispatcher::Order`]s —
//! defer or begin a request, record and look up a notification, page person P by contact C (or
//! by one of their registered devices), send a text, end a request's or a stage's calls, release
//! a holding caller, write a notification status or a request event, move the request (answered,
//! acknowledged, completed, exhausted), save the escalation under the lease, renew leases, claim
//! orphaned escalations and due deferred requests, forget a finished escalation.
//!
//! It decides the page cap (`[paging] max_pages_per_hour`) and the dial plan check at dial time.
//!
//! What it deliberately does not do: SIP (no peer, URI, trunk, credentials or socket is named:
//! the calls side turns a [`Contact`](oncall_core::Contact) or a [`DeviceRef`] into a Request-URI,
//! next hop and credentials), the store (it orders, the wrapper awaits), decoding the caller's
//! message, text bodies and gateways, webhooks, and choosing the policy of a request (the wrapper
//! does it when it carries out [`Order::Begin`]). It depends only on `oncall-core` (the domain
//! types, the engine, the page cap and the dial plan) and the calls side's `Outcome` type.
//!
//! Wired: `escalations::Paging::run` (started by the binary's `serve`) is the thin tokio loop
//! around [`Dispatcher`]: it feeds it `PagingEvent`s and the results of carrying out its orders,
//! calls `handle_timeout` at `poll_timeout()`, and carries out every [`Order`] against the store,
//! the call controller and the text senders.
//!
//! # What it replaced in the paging task (formerly `src/paging.rs`)
//! - `Paging::run`'s loop decisions (the heartbeat interval and `restarting`, the due-engine scan)
//!   → [`Dispatcher::poll_timeout`], [`Dispatcher::handle_timeout`] (`Order::RenewLeases`,
//!   `ClaimOrphans`, `ClaimDueDeferred`).
//! - `Paging::on_event` and `Paging::defer_if_after_hours`'s decision (`when_to_page` and the
//!   "deferred until …" detail; the store reads and `defer_request` stay in the wrapper) →
//!   `Input::RequestOpened`, `DeferFailed`, `Order::Defer`, `Order::Begin`.
//! - `Paging::page_due_deferred`'s loop → `Input::DeferredDue`.
//! - The end of `Paging::start_escalation` (policy event, "escalation run by instance", the first
//!   drive; the policy choice and `begin_escalation` stay in the wrapper) → `Input::EscalationBegun`.
//! - `Paging::on_call_result` (status, answered/acknowledged/completed, the outcome → engine input,
//!   the kept leg) → `Input::Outcome`.
//! - `Paging::on_text_reply` → `Input::TextReply`.
//! - `Paging::drive` (commands → orders, the stage change, the save, keep or finish) and its lease
//!   check → `Order::Save`, `Input::LeaseLost`.
//! - `Paging::heartbeat`'s per-claim decisions ("taken over" event, catch-up, resume) →
//!   `Input::TakenOver`.
//! - `Paging::notify` and `Paging::notify_text`'s decisions (registered devices first, else the
//!   first contact; disabled, no contact and texts-off failures) → `Order::Notify`,
//!   `Input::PersonFound`, `Input::NotifyFailed`, `Order::Page`, `Order::SendText`; the contact →
//!   URI/trunk/DNS part (`resolve_sip_uri`, the trunk's From and credentials) stays out.
//! - `LEASE` and `HEARTBEAT` → [`dispatcher::LEASE`], [`dispatcher::HEARTBEAT`].
//! - `Paging::admit_page` and `Paging::dialable`'s decisions (the page cap, a taken-over request
//!   staying capped, phone numbers the dial plan refuses) → [`Settings`]' `max_pages_per_hour` and
//!   `dial_plan`, `Input::TakenOver`'s `capped`, the `page_cap` / `dial_plan` request events; the
//!   request log read (was it capped?) stays in the wrapper.

pub mod alert_pages;
pub mod config;
pub mod dispatcher;
pub mod escalations;
pub mod heartbeats;
pub mod mail;
pub mod per_org;
/// Whether paging can reach a person now: the web's health warnings (issue 18 item 5).
pub mod reachability;
pub mod speech;
pub mod texts;
pub mod webhooks;

pub use dispatcher::{CallerRef, DeviceRef, Dispatcher, Input, Order, Outcome, Settings};
