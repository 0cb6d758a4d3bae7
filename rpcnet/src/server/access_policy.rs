//! `AccessPolicy`: an allow-list of client certificate names per service and per method,
//! denying what it does not list; and `RpcServer::set_authorization`, which sets a server's
//! check (this policy or any other `Authorize`).

use std::collections::HashMap;

use super::RpcServer;
use super::authorize::{Authorization, Authorize, Denied};
use super::context::Context;
use super::peer::PeerIdentity;
use crate::error::RpcError;

impl RpcServer {
    /// Sets the check every call passes before its handler runs (a second call replaces the
    /// first): an [`AccessPolicy`] of client certificate names under mutual TLS, or a closure
    /// of your own (see [`Authorize`]). A refused call fails with
    /// [`RpcError::PermissionDenied`] and its handler never runs; the connection serves the
    /// client's next calls as usual. Fails, setting nothing, if the check's own validation
    /// ([`Authorize::validate`]) does: an [`AccessPolicy`] built from bad input, say.
    pub fn set_authorization(&mut self, check: impl Authorize) -> Result<&mut Self, RpcError> {
        check.validate()?;
        self.authorization = Some(Authorization::new(check));
        Ok(self)
    }
}

/// An allow-list of client certificate names per service and per method, under mutual TLS
/// ([`RpcConfig::with_client_ca_certificates`](crate::RpcConfig::with_client_ca_certificates)).
///
/// A name matches a client whose certificate has it as its common name, one of its DNS names
/// or one of its URIs ([`PeerIdentity::has_name`](super::PeerIdentity::has_name)), compared
/// exactly. For a call to `Service.method`:
///
/// 1. a rule for the method ([`allow_method`](Self::allow_method)) decides if there is one,
///    whatever the service's rule says: it can narrow the service's list or widen it;
/// 2. else the service's rule ([`allow_service`](Self::allow_service)) decides;
/// 3. else the call is refused: **deny by default**, so a method added later is closed until
///    a rule names it. [`allow_unlisted`](Self::allow_unlisted) opens such methods to every
///    client with a certificate instead.
///
/// A call whose client presented no certificate (a server without mutual TLS), or one whose
/// certificate could not be read, is always refused. The built-in `rpcnet.ping` is always
/// allowed. A refused call fails with [`RpcError::PermissionDenied`], naming the method and the
/// client's certificate subject, and is not retry-safe.
///
/// Names must not be empty: a rule with an empty name makes
/// [`RpcServer::set_authorization`] fail with [`RpcError::Config`] naming it, rather than
/// serve under a policy that says something else than meant. A rule with no names refuses everyone (a way to close one method of an open
/// service). Rules for one service or method add up.
///
/// ```no_run
/// # async fn demo(ca: rustls::pki_types::CertificateDer<'static>) -> Result<(), rpcnet::RpcError> {
/// use rpcnet::server::AccessPolicy;
/// use rpcnet::{RpcConfig, RpcServer};
///
/// let policy = AccessPolicy::new()
///     .allow_service("Accounts", ["billing", "spiffe://example.org/support"])
///     .allow_method("Accounts.delete", ["admin"]);
/// let mut server = RpcServer::new(RpcConfig::dev("0.0.0.0:4433").with_client_ca_certificates(vec![ca]));
/// server.set_authorization(policy)?;
/// let (_addr, _handle) = server.spawn()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    services: HashMap<String, Vec<String>>,
    methods: HashMap<String, Vec<String>>,
    allow_unlisted: bool,
    /// The first bad input, reported by `validate`.
    invalid: Option<String>,
}

impl AccessPolicy {
    /// A policy that allows nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets clients with any of `names` call every method of `service` (the part of a method
    /// name before its last dot: `"Accounts"` for `"Accounts.open"`) that has no rule of its own.
    pub fn allow_service<N: Into<String>>(mut self, service: &str, names: impl IntoIterator<Item = N>) -> Self {
        self.add_rule(Rule::Service, service, names);
        self
    }

    /// Lets clients with any of `names`, and only those, call `method` (its full name,
    /// `"Accounts.delete"`), whatever the rule of its service says.
    pub fn allow_method<N: Into<String>>(mut self, method: &str, names: impl IntoIterator<Item = N>) -> Self {
        self.add_rule(Rule::Method, method, names);
        self
    }

    /// Lets every client with a certificate call the methods no rule names (by default they
    /// are refused).
    pub fn allow_unlisted(mut self) -> Self {
        self.allow_unlisted = true;
        self
    }

    fn add_rule<N: Into<String>>(&mut self, rule: Rule, target: &str, names: impl IntoIterator<Item = N>) {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let what = rule.as_str();
        if self.invalid.is_none() {
            if target.is_empty() {
                self.invalid = Some(format!("AccessPolicy::allow_{what} was given an empty {what} name"));
            } else if names.iter().any(String::is_empty) {
                self.invalid =
                    Some(format!("AccessPolicy::allow_{what} for `{target}` was given an empty client name"));
            }
        }
        let rules = match rule {
            Rule::Service => &mut self.services,
            Rule::Method => &mut self.methods,
        };
        rules.entry(target.to_owned()).or_default().extend(names);
    }
}

/// Which kind of rule a name list belongs to.
#[derive(Clone, Copy)]
enum Rule {
    Service,
    Method,
}

impl Rule {
    fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Method => "method",
        }
    }
}

impl Authorize for AccessPolicy {
    fn authorize(&self, context: &Context) -> Result<(), Denied> {
        let method = context.method();
        let Some(identity) = context.peer_identity() else {
            return Err(Denied::new(format!(
                "`{method}` requires a client certificate the server can read, and the client presented none"
            )));
        };
        let names = self.methods.get(method).or_else(|| self.services.get(context.service()));
        let allowed = match names {
            Some(names) => names.iter().any(|name| identity.has_name(name)),
            None => self.allow_unlisted,
        };
        if allowed {
            return Ok(());
        }
        Err(Denied::new(format!("`{method}` is not allowed for the client {}", describe(identity))))
    }

    fn validate(&self) -> Result<(), RpcError> {
        match &self.invalid {
            Some(problem) => Err(RpcError::Config(problem.clone())),
            None => Ok(()),
        }
    }
}

/// How a refusal names the client: its subject, or its names if the subject is empty.
fn describe(identity: &PeerIdentity) -> String {
    if !identity.subject().is_empty() {
        return format!("`{}`", identity.subject());
    }
    let names: Vec<&str> = identity.dns_names().iter().chain(identity.uris()).map(String::as_str).collect();
    format!("named `{}`", names.join("`, `"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::CertificateDer;

    use super::*;
    use crate::metadata::Metadata;
    use crate::server::peer::Peer;

    fn identity(common_name: &str, dns_names: &[&str], uris: &[&str]) -> PeerIdentity {
        PeerIdentity {
            certificate: CertificateDer::from(Vec::new()),
            subject: if common_name.is_empty() { String::new() } else { format!("CN={common_name}") },
            common_name: (!common_name.is_empty()).then(|| common_name.to_owned()),
            dns_names: dns_names.iter().map(|n| n.to_string()).collect(),
            uris: uris.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn call(method: &str, identity: Option<PeerIdentity>) -> Context {
        let peer = Peer { address: "127.0.0.1:5000".parse().unwrap(), identity };
        Context::new(method.into(), None, Arc::new(peer), Metadata::new())
    }

    fn allowed(policy: &AccessPolicy, method: &str, identity: &PeerIdentity) -> bool {
        policy.authorize(&call(method, Some(identity.clone()))).is_ok()
    }

    #[test]
    fn a_name_matches_the_common_name_a_dns_name_or_a_uri() {
        let policy = AccessPolicy::new().allow_service("Svc", ["billing", "db.internal", "spiffe://example.org/ops"]);
        assert!(allowed(&policy, "Svc.read", &identity("billing", &[], &[])));
        assert!(allowed(&policy, "Svc.read", &identity("x", &["db.internal"], &[])));
        assert!(allowed(&policy, "Svc.read", &identity("", &[], &["spiffe://example.org/ops"])));
        assert!(!allowed(&policy, "Svc.read", &identity("Billing", &["billing.internal"], &["spiffe://example.org"])));
    }

    #[test]
    fn a_method_rule_overrides_its_services_rule_both_ways() {
        let policy = AccessPolicy::new()
            .allow_service("Accounts", ["billing", "admin"])
            .allow_method("Accounts.delete", ["admin"])
            .allow_method("Accounts.status", ["monitor"]);
        let (billing, admin, monitor) =
            (identity("billing", &[], &[]), identity("admin", &[], &[]), identity("monitor", &[], &[]));
        assert!(allowed(&policy, "Accounts.open", &billing) && allowed(&policy, "Accounts.open", &admin));
        assert!(!allowed(&policy, "Accounts.delete", &billing), "narrowed to admin");
        assert!(allowed(&policy, "Accounts.delete", &admin));
        assert!(allowed(&policy, "Accounts.status", &monitor), "widened to monitor");
        assert!(!allowed(&policy, "Accounts.status", &billing), "the method's rule decides alone");
        assert!(!allowed(&policy, "Accounts.open", &monitor));
    }

    #[test]
    fn unlisted_methods_are_refused_unless_allowed_and_a_rule_without_names_refuses_all() {
        let client = identity("anyone", &[], &[]);
        let closed = AccessPolicy::new().allow_service("Svc", ["anyone"]);
        assert!(!allowed(&closed, "Other.read", &client), "deny by default");
        assert!(!allowed(&closed, "read", &client), "a method name without a service is its own service");
        let open = AccessPolicy::new().allow_unlisted().allow_method("Svc.drop", Vec::<String>::new());
        assert!(allowed(&open, "Other.read", &client));
        assert!(!allowed(&open, "Svc.drop", &client));
        assert!(allowed(&open, "Svc.read", &client), "only the method has a rule");
    }

    #[test]
    fn a_call_without_an_identity_is_refused_even_where_everything_is_open() {
        let policy = AccessPolicy::new().allow_unlisted();
        let refused = policy.authorize(&call("Svc.read", None)).unwrap_err();
        assert!(refused.message().contains("`Svc.read`") && refused.message().contains("certificate"), "{refused}");
    }

    #[test]
    fn a_refusal_names_the_method_and_the_client() {
        let policy = AccessPolicy::new().allow_method("Svc.write", ["allowed-client"]);
        let refused = policy.authorize(&call("Svc.write", Some(identity("other-client", &[], &[])))).unwrap_err();
        assert_eq!(refused.message(), "`Svc.write` is not allowed for the client `CN=other-client`");
        let nameless = identity("", &["a.example"], &["spiffe://b"]);
        let refused = policy.authorize(&call("Svc.write", Some(nameless))).unwrap_err();
        assert_eq!(refused.message(), "`Svc.write` is not allowed for the client named `a.example`, `spiffe://b`");
    }

    #[test]
    fn empty_names_are_reported_naming_the_setter() {
        let err = AccessPolicy::new().allow_service("", ["a"]).validate().unwrap_err();
        assert!(
            matches!(err, RpcError::Config(ref m) if m.contains("allow_service") && m.contains("empty service")),
            "{err}"
        );
        let err =
            AccessPolicy::new().allow_method("Svc.write", ["ok", ""]).allow_service("", ["a"]).validate().unwrap_err();
        assert!(
            matches!(err, RpcError::Config(ref m) if m.contains("`Svc.write`") && m.contains("empty client")),
            "the first problem: {err}"
        );
        assert!(AccessPolicy::new().allow_service("Svc", ["a"]).allow_unlisted().validate().is_ok());
    }
}
