//! `#[rpc_service]`: a shim over `rpcnet_build::codegen`, which holds all the logic.
//! Use it through `rpcnet::rpc_service`.

use proc_macro::TokenStream;

/// Turns a trait into a typed rpc service. See `rpcnet::rpc_service`.
#[proc_macro_attribute]
pub fn rpc_service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    match rpcnet_build::codegen::expand(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            let errors = err.to_compile_error();
            let fallback = rpcnet_build::codegen::fallback(original);
            quote::quote!(#errors #fallback).into()
        }
    }
}
