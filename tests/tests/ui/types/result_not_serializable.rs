pub struct Handle(std::fs::File);

#[rpcnet::rpc_service]
pub trait Files {
    async fn open(&self, path: String) -> Handle;
}

fn main() {}
