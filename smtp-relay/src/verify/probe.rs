//! One recipient probe, on a probe thread: the route's static hosts in order (names
//! resolved through A/AAAA with the relay's nameservers, a host without a port on
//! `[relay] port`), EHLO and STARTTLS as the relay does for the route's `tls`, then
//! `MAIL FROM:<>`, `RCPT TO:<address>`, `RSET`, `QUIT` through the blocking driver of
//! `smtp-client`. Never DATA.
//!
//! The first host that answers RCPT decides; a host that cannot be reached (or refuses
//! the session) passes the turn to the next. The whole probe has one deadline.
//!
//! What it does not do: cache or coalesce (see [`super::Verifier`]), or use MX records (a
//! verified domain always has a route; without one the answer is a temporary failure).

use std::time::{Duration, Instant};

use smtp_client::driver::blocking::{Client, Options, ProbeAnswer};
use smtp_proto::Reply;

use super::{one_line, Answer, VerifySettings};
use crate::driver::dns::StubResolver;
use crate::route::{resolve_domain, LocalHost, NextHop, RouteOutcome};

/// Probes `address` (of `domain`) at the next hops of `domain`'s route.
pub(super) fn probe(address: &str, domain: &str, settings: &VerifySettings) -> Answer {
    let deadline = Instant::now() + settings.timeout;
    if settings.routes.lookup(domain).is_none() {
        return Answer::Unverified("no route for the domain".into());
    }
    // The verifier filled in the system's nameservers once (see `Verifier::start`).
    let dns_timeout = settings.dns_timeout.min(settings.timeout);
    let mut resolver = StubResolver::new(settings.nameservers.clone(), dns_timeout);
    let hops = match resolve_domain(
        domain,
        &settings.routes,
        &LocalHost::default(),
        &mut resolver,
        0,
    ) {
        RouteOutcome::Hops(hops) => hops,
        RouteOutcome::Permanent(r) | RouteOutcome::Temporary(r) => {
            return Answer::Unverified(one_line(&r))
        }
    };
    let mut last = String::from("no next hop");
    for hop in &hops {
        if Instant::now() >= deadline {
            last = format!("timed out after {:?}", settings.timeout);
            break;
        }
        match ask(hop, address, &settings.helo, deadline) {
            Ok(ProbeAnswer::Rcpt(reply)) => return decide(hop, reply),
            Ok(ProbeAnswer::MailRefused(reply)) => {
                last = format!("{} refused MAIL FROM:<>: {}", hop.addr, one_line(&reply));
            }
            Err(e) => last = format!("{}: {e}", hop.addr),
        }
        log::debug!("verify {address}: {last}");
    }
    Answer::Unverified(last)
}

/// What the next hop's reply to RCPT means.
fn decide(hop: &NextHop, reply: Reply) -> Answer {
    if reply.is_positive_completion() {
        Answer::Valid
    } else if reply.is_permanent() {
        Answer::Unknown(reply)
    } else {
        Answer::Unverified(format!("{} said: {}", hop.addr, one_line(&reply)))
    }
}

/// One connection: setup, the probe, QUIT.
fn ask(
    hop: &NextHop,
    address: &str,
    helo: &str,
    deadline: Instant,
) -> Result<ProbeAnswer, smtp_client::Error> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let mut options = Options::new(helo);
    options.connect_timeout = left;
    let policy = &mut options.session.policy;
    policy.greeting_timeout = policy.greeting_timeout.min(left);
    policy.command_timeout = policy.command_timeout.min(left);
    // As the relay's delivery does for the route's `tls`.
    (policy.tls, options.tls.verify) = hop.tls.client_settings();
    options.session.peer_name = Some(hop.name.clone());
    let mut conn = Client::connect(hop.addr, options)?;
    let answer = conn.probe_recipient(address, deadline);
    if answer.is_ok() {
        let _ = conn.quit();
    }
    answer
}
