#[tokio::test]
async fn future_sizes() {
    let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
    server.register("e", |p| async move { Ok(p) }).await;
    let (addr, _h) = server.spawn().unwrap();
    let client = rpcnet::RpcClient::connect(addr, rpcnet::RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let f = client.call_with("e", rpcnet::Bytes::new(), rpcnet::CallOptions::default());
    println!("SIZE call_with {}", std::mem::size_of_val(&f));
    f.await.unwrap();
}
