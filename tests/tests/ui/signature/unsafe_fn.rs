#[rpcnet::rpc_service]
pub trait Raw {
    async unsafe fn poke(&self, address: u64);
}

fn main() {}
