//! Generated code names everything by absolute path: it compiles without the prelude and
//! with rpcnet imported under another name (through `#[rpc_service(crate = "...")]`).
#![no_implicit_prelude]
#![allow(missing_docs)]

extern crate rpcnet as runtime;
extern crate std;
extern crate tokio;

#[runtime::rpc_service(crate = "::runtime")]
pub trait Echo {
    async fn echo(&self, text: ::std::string::String) -> ::std::string::String;
    async fn shout(&self, text: ::std::string::String) -> ::std::result::Result<::std::string::String, u8>;
}

struct Loud;

impl Echo for Loud {
    async fn echo(&self, text: ::std::string::String) -> ::std::string::String {
        text
    }

    async fn shout(&self, text: ::std::string::String) -> ::std::result::Result<::std::string::String, u8> {
        if text.is_empty() { ::std::result::Result::Err(0) } else { ::std::result::Result::Ok(text.to_uppercase()) }
    }
}

#[::tokio::test]
async fn a_service_without_prelude_and_with_a_renamed_crate_works() {
    let mut server = runtime::RpcServer::new(runtime::RpcConfig::dev("127.0.0.1:0"));
    server.add_service(EchoServer::new(Loud));
    let (addr, _shutdown) = server.spawn().unwrap();
    let client = EchoClient::connect(addr, runtime::RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    ::std::assert_eq!(client.echo(::std::convert::From::from("hi")).await.unwrap(), "hi");
    ::std::assert_eq!(client.shout(::std::string::String::new()).await.unwrap(), ::std::result::Result::Err(0));
}
