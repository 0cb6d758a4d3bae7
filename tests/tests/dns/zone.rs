//! An authoritative DNS server on loopback for the tests: hickory-server serving one
//! in-memory zone over UDP and TCP on 127.0.0.1, port 0, whose records a test replaces,
//! removes, and whose server it stops and starts again on the same port.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

type Zone = InMemoryZoneHandler<TokioRuntimeProvider>;

/// The zone every test serves its names under.
pub(crate) const ORIGIN: &str = "rpcnet.test.";

/// A running DNS server and the zone it answers from.
pub(crate) struct TestDns {
    addr: SocketAddr,
    zone: Arc<Zone>,
    server: Option<Server<Catalog>>,
}

impl TestDns {
    /// A server for [`ORIGIN`] with only its SOA record.
    pub(crate) async fn start() -> Self {
        let origin = Name::from_ascii(ORIGIN).unwrap();
        let zone = Zone::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(origin.clone(), Name::from_ascii("admin.rpcnet.test.").unwrap(), 1, 60, 60, 60, 0);
        assert!(zone.upsert(Record::from_rdata(origin, 60, RData::SOA(soa)), 1).await);
        let mut dns = Self { addr: "127.0.0.1:0".parse().unwrap(), zone: Arc::new(zone), server: None };
        dns.serve().await;
        dns
    }

    /// The server's address, UDP and TCP alike: the name server to give the resolver.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn serve(&mut self) {
        let udp = UdpSocket::bind(self.addr).await.unwrap();
        self.addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(self.addr).await.unwrap();
        let mut catalog = Catalog::new();
        let origin = LowerName::new(&Name::from_ascii(ORIGIN).unwrap());
        catalog.upsert(origin, vec![self.zone.clone() as Arc<dyn ZoneHandler>]);
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        self.server = Some(server);
    }

    /// Stops answering: queries then fail (the port is closed).
    pub(crate) async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.shutdown_gracefully().await.unwrap();
        }
    }

    /// Answers again, on the same port, from the same zone.
    pub(crate) async fn restart(&mut self) {
        assert!(self.server.is_none(), "restart a stopped server");
        self.serve().await;
    }

    /// `name` (relative to the zone) now has exactly these addresses, with this TTL.
    pub(crate) async fn set_addresses(&self, name: &str, ips: &[IpAddr], ttl: u32) {
        let owner = self.name(name);
        self.remove(name, RecordType::A).await;
        self.remove(name, RecordType::AAAA).await;
        for ip in ips {
            let data = match ip {
                IpAddr::V4(ip) => RData::A(A(*ip)),
                IpAddr::V6(ip) => RData::AAAA(AAAA(*ip)),
            };
            assert!(self.zone.upsert(Record::from_rdata(owner.clone(), ttl, data), 1).await);
        }
    }

    /// `name` now has exactly these SRV records: `(port, host)`, hosts relative to the zone.
    pub(crate) async fn set_srv(&self, name: &str, services: &[(u16, &str)], ttl: u32) {
        let owner = self.name(name);
        self.remove(name, RecordType::SRV).await;
        for (port, host) in services {
            let srv = SRV::new(10, 10, *port, self.name(host));
            assert!(self.zone.upsert(Record::from_rdata(owner.clone(), ttl, RData::SRV(srv)), 1).await);
        }
    }

    /// `name` loses its records of this type.
    pub(crate) async fn remove(&self, name: &str, kind: RecordType) {
        let key = RrKey::new(LowerName::new(&self.name(name)), kind);
        self.zone.records_mut().await.remove(&key);
    }

    /// `name` under the zone, as an absolute name.
    pub(crate) fn name(&self, name: &str) -> Name {
        Name::from_ascii(format!("{name}.{ORIGIN}")).unwrap()
    }
}
